"""Render a role's templates for one host the way a play does: role defaults < host variables < role vars < extra.

The network-namespace and etcd tests run the daemons on exactly these files (the same Templar,
defaults and variables as ansible-playbook), without a host to run the play against.
"""

from __future__ import annotations

from typing import Any

from kasbah.resources import roles
from tests.conftest import ROOT

ROLES = roles(ROOT / "playbooks")
MANAGED = "Managed by kasbah (test)"


def render(
    role: str, host: str, variables: dict[str, Any], extra: dict[str, Any], templates: dict[str, str]
) -> dict[str, str]:
    """{key: text} for each template (path under templates/) keyed by `templates`' keys; also `vars:<name>` lookups."""
    from ansible.parsing.dataloader import DataLoader
    from ansible.template import Templar, trust_as_template

    loader = DataLoader()
    base = ROLES / role
    defaults = loader.load_from_file(str(base / "defaults" / "main.yml"), trusted_as_template=True)
    private = loader.load_from_file(str(base / "vars" / "main.yml"), trusted_as_template=True)
    scope = {
        **defaults, **variables, **private, **extra,
        "inventory_hostname": host, "ansible_managed": MANAGED, "groups": {"control_plane": [host]},
    }  # fmt: skip
    templar = Templar(loader=loader, variables=scope)
    out = {}
    for key, template in templates.items():
        if key.startswith("vars:"):
            out[key] = templar.template(trust_as_template("{{ " + template + " }}"))
        else:
            out[key] = templar.template(trust_as_template((base / "templates" / template).read_text()))
    return out
