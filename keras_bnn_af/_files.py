"""Atomic file writes: a reader never sees a half-written file."""

import os
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike, content: str | bytes) -> Path:
    """Writes `content` to a sibling temporary file, then renames it onto `path`.

    The rename is atomic on POSIX file systems, so `path` holds either its old
    content or the new one, never a part. Missing folders are created.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(f".{out.name}.{os.getpid()}.partial")
    if isinstance(content, str):
        partial.write_text(content)
    else:
        partial.write_bytes(content)
    partial.replace(out)
    return out
