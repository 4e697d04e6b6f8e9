"""The `kasbah` command: validate an environment, plan a phase, diff two phases, and the rest.

`main` runs one command and turns what went wrong into an exit code: a refusal of the input (a
`ConfigError`, located; a `UsageError`; a render or input-file error) is 2, a bug is 3 and never
passes for 1 ("not stable"). The package is cut along the commands' nouns:

- `parser`: the argument parser, built in one place (shared `-e/--environment` and `--json`)
- `environment`: validate, plan, diff, render, verify
- `cluster`: preview, apply, kind-config
- `nodes`: configure, provision
- `review`: review
- `output`: everything printed for people (tables, verdicts) and the `--json` writer
- `common`: exit codes, refusals, planning with progress, atomic writes, the target of a command
"""

from __future__ import annotations

import sys
import traceback
from collections.abc import Sequence

from kasbah.cli.common import EXIT_INTERNAL, EXIT_INVALID, EXIT_OK, EXIT_UNREACHABLE, EXIT_UNSTABLE, UsageError
from kasbah.cli.output import print_json
from kasbah.cli.parser import build_parser
from kasbah.config import ConfigError
from kasbah.config.files import InputFileError
from kasbah.rendering.tree import RenderError

__all__ = [
    "EXIT_INTERNAL",
    "EXIT_INVALID",
    "EXIT_OK",
    "EXIT_UNREACHABLE",
    "EXIT_UNSTABLE",
    "UsageError",
    "build_parser",
    "main",
]


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except ConfigError as exc:
        if getattr(args, "json", False):  # a machine reads the refusal too, located
            print_json({"ok": False, "problems": [i.as_dict() for i in exc.issues]})
        sys.stderr.write(exc.render() + "\n")
        return EXIT_INVALID
    except (UsageError, RenderError, InputFileError) as exc:
        sys.stderr.write(f"kasbah: {exc}\n")
        return EXIT_INVALID
    except BrokenPipeError:
        return EXIT_OK
    except Exception:  # a bug: never let it pass for exit 1 ("not stable")
        traceback.print_exc()
        sys.stderr.write("kasbah: internal error (a bug in kasbah); please report it with the input that caused it\n")
        return EXIT_INTERNAL
