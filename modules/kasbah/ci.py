"""Small helpers the `.ci/` scripts call, so they need no YAML or JSON parsing in shell.

python -m kasbah.ci phases ENV_DIR            # the environment's phases, in build order
python -m kasbah.ci stack-phase CONFIG        # "<environment dir> <phase>" of a Pulumi.<stack>.yaml
python -m kasbah.ci expect-unchanged REPORT   # exit 1 unless a `kasbah preview --json` report changes nothing
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import yaml


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in ("phases", "stack-phase", "expect-unchanged"):
        sys.stderr.write(__doc__ or "")
        return 2
    verb, arg = args
    if verb == "phases":
        from kasbah.config import load_environment

        print(" ".join(p.name for p in load_environment(Path(arg)).campus.phases))
        return 0
    if verb == "stack-phase":
        config = (yaml.safe_load(Path(arg).read_text()) or {}).get("config") or {}
        env, phase = config.get("kasbah:environment"), config.get("kasbah:phase")
        if not env or not phase:
            sys.stderr.write(f"{arg}: needs kasbah:environment and kasbah:phase\n")
            return 2
        print(env, phase)
        return 0
    report = json.loads(Path(arg).read_text())
    left = [o for o in report["objects"] if o["action"] != "unchanged"]
    for o in left:
        sys.stderr.write(f"{o['action']}: {o['kind']} {o.get('namespace') or ''}/{o['name']} {o['message']}\n")
    return 1 if left else 0


if __name__ == "__main__":
    raise SystemExit(main())
