"""Reading an input file safely: a regular file of bounded size, checked before it is read.

A path that names a FIFO, a device (or a link to one), a socket or a directory would block or
never end if read; a file far larger than any input kasbah takes is a mistake. Every input
kasbah reads by path (an environment's YAML, a plan file, a rendered tree) goes through here.
"""

from __future__ import annotations

import stat
from pathlib import Path


class InputFileError(Exception):
    """A path that is not a readable regular file of bounded size: what is wrong, and the fix."""

    def __init__(self, path: Path, problem: str, fix: str) -> None:
        self.path, self.problem, self.fix = path, problem, fix
        super().__init__(f"{path}: {problem}; {fix}")


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "not a regular file"


def read_regular(path: Path, limit: int, what: str = "file", too_large: str | None = None) -> bytes:
    """The bytes of `path` (links followed) if it is a regular file of at most `limit` bytes.

    Raises FileNotFoundError for a missing file (callers say what was expected there) and
    InputFileError for anything else that is wrong.
    """
    try:
        info = path.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise InputFileError(
            path, f"cannot read the {what}: {exc.strerror or exc}", f"make it a readable {what}"
        ) from None
    if not stat.S_ISREG(info.st_mode):
        kind = _kind(info.st_mode)
        raise InputFileError(
            path, f"it is {kind}, not a regular file", f"give a regular {what} (a link to one is fine)"
        )
    try:
        with path.open("rb") as fh:
            data = fh.read(limit + 1)
    except OSError as exc:
        raise InputFileError(
            path, f"cannot read the {what}: {exc.strerror or exc}", f"make it a readable {what}"
        ) from None
    if len(data) > limit:
        size = f"{limit // (1024 * 1024)} MiB" if limit >= 1024 * 1024 else f"{limit:,} bytes"
        raise InputFileError(
            path, f"the file is larger than {size}", too_large or f"a {what} is far smaller; check the path"
        )
    return data
