"""Writing an output file so that a reader never sees half of it."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """write(tmp) into a temporary file beside `path`, renamed to `path` when complete: a full
    disk or an interruption leaves no truncated output, and an existing file stays as it was.
    The temporary name keeps the suffix, since writers choose the format by it."""
    path = Path(path)
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
