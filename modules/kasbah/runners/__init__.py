"""Runners that act on real systems: ansible-runner, the Kubernetes client."""
