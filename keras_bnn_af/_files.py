"""Output paths: checked before any work, and written atomically.

One rule for every writer of the package and the CLI: a **file** goes into a
folder that exists (a mistyped folder is an error, never a new folder tree),
while a **folder** a command fills (a run, a demo report, a search) is created
together with its missing parents. `check_output_file` and
`check_output_folder` apply the rule up front, so a long job never fails at
its last step on a path it could have refused at the first.
"""

import hashlib
import os
import tempfile
from pathlib import Path

__all__ = ["check_output_file", "check_output_folder", "write_atomic"]


def check_output_file(path: str | os.PathLike, option: str = "path") -> Path:
    """`path` as a `Path`, if a file can be written there; nothing is created.

    `option` names the argument in the messages (`"--out"`, `"path"`).

    # Raises
        ValueError: `path` is a folder, its folder does not exist (or a file
            stands in its place), or the folder is not writable.
    """
    out = Path(path)
    if out.is_dir():
        raise ValueError(
            f"Cannot write {str(out)!r}: it is a folder, expected {option} to name a "
            f"file. Pass {option} as a file path inside that folder."
        )
    folder = out.parent
    if not folder.is_dir():
        _refuse_file_in_the_way(out, _nearest_existing(folder), option)
        raise ValueError(
            f"Cannot write {str(out)!r}: folder {str(folder)!r} does not exist. Pass "
            f"{option} in an existing folder, or create it first "
            f"(mkdir -p {folder})."
        )
    _check_writable(out, folder, option)
    return out


def check_output_folder(path: str | os.PathLike, option: str = "path") -> Path:
    """`path` as a `Path`, if it is a folder or can be made one with its parents.

    Nothing is created; whether an existing folder may be reused is the
    caller's decision.

    # Raises
        ValueError: a file stands at `path` or in place of one of its folders,
            or the nearest existing folder is not writable.
    """
    out = Path(path)
    existing = _nearest_existing(out)
    if existing == out and not out.is_dir():
        raise ValueError(
            f"Cannot write into {str(out)!r}: it is a file, expected {option} to name "
            f"a folder. Pass another {option} path."
        )
    _refuse_file_in_the_way(out, existing, option)
    _check_writable(out, existing, option)
    return out


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


def _nearest_existing(path: Path) -> Path:
    """`path` or its closest ancestor that exists."""
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _refuse_file_in_the_way(out: Path, existing: Path, option: str) -> None:
    if existing.exists() and not existing.is_dir():
        raise ValueError(
            f"Cannot write {str(out)!r}: {str(existing)!r} is a file, not a folder. "
            f"Pass {option} inside a folder."
        )


def _check_writable(out: Path, folder: Path, option: str) -> None:
    """Creates and removes a temporary file in `folder`: the one reliable test
    (permission bits say nothing for root, read-only mounts or /proc)."""
    try:
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise ValueError(
            f"Cannot write {str(out)!r}: folder {str(folder)!r} is not writable "
            f"({error.strerror or error}). Pass {option} in a writable folder."
        ) from None


def file_sha256(path: str | os.PathLike) -> str:
    """The hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
