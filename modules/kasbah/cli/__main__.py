"""`python -m kasbah.cli`: the `kasbah` command."""

from kasbah.cli import main

raise SystemExit(main())
