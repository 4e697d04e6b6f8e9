"""Pulumi ComponentResources; the only package besides stacks/ that imports pulumi."""
