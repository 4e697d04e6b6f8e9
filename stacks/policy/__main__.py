"""kasbah's policy pack (run with `pulumi preview --policy-pack stacks/policy`)."""

from pulumi_policy import EnforcementLevel, PolicyPack

from kasbah.components.policies import POLICIES

PolicyPack(name="kasbah", enforcement_level=EnforcementLevel.MANDATORY, policies=list(POLICIES))
