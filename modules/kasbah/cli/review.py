"""`kasbah review`: what a change does against a base checkout, as a pull request's markdown summary.

The work is `kasbah.review`'s (both sides planned and rendered, the plan diffs, the rendered files
that differ, the affected stacks); this command checks the two checkouts, writes the markdown (or,
with `--json`, the whole review as JSON) and, for a CI matrix, the affected stacks as JSON.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from kasbah.cli.common import EXIT_OK, EXIT_UNSTABLE, UsageError, emit, progress, write_atomic
from kasbah.planning.export import to_json


def cmd_review(args: argparse.Namespace) -> int:
    from kasbah import review

    base, head = Path(args.base), Path(args.head)
    for side, path in (("--base", base), ("--head", head)):
        if not (path / "environments").is_dir():
            raise UsageError(
                f"{side} {path}: not a kasbah checkout (no environments/); fix: `git worktree add {path} origin/main`"
            )
    envs = args.environment or None
    for e in envs or ():
        if not (head / "environments" / e / "site.yaml").is_file():
            raise UsageError(f"--environment {e}: {head / 'environments' / e} has no site.yaml")
    with progress("planning and rendering both sides"):
        result = review.review(base, head, envs, "every stack asked for (--all-stacks)" if args.all_stacks else None)
    emit(to_json(result.as_dict()) if args.json else review.markdown(result), args.output, "the review")
    if args.affected:
        write_atomic(Path(args.affected), json.dumps(result.affected(), indent=2) + "\n")
    return EXIT_OK if result.stable else EXIT_UNSTABLE
