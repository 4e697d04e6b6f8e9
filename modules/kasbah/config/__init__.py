"""Campus description: pydantic models, loading from YAML, and validation with located errors."""

from kasbah.config.issues import ConfigError, ConfigIssue, LocatedIssue, PlanningError
from kasbah.config.loader import Environment, load_environment
from kasbah.config.models import Campus

__all__ = [
    "Campus",
    "ConfigError",
    "ConfigIssue",
    "Environment",
    "LocatedIssue",
    "PlanningError",
    "load_environment",
]
