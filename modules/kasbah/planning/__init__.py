"""Pure planning: campus description in, one Plan per phase out. No I/O, no Pulumi."""

from kasbah.planning.diff import PlanDiff, diff_plans
from kasbah.planning.export import plan_to_dict, summary
from kasbah.planning.model import Plan
from kasbah.planning.planner import plan_campus, plan_environment, plan_phase

__all__ = ["Plan", "PlanDiff", "diff_plans", "plan_campus", "plan_environment", "plan_phase", "plan_to_dict", "summary"]
