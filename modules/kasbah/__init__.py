"""kasbah: one declarative description of a phased, sovereign AI campus, planned into reproducible deployments."""

__version__ = "0.1.0"
