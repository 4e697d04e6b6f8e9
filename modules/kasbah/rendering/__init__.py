"""Projections of a Plan into artifacts (manifests, inventory, schedules); see the render issue."""
