"""Writing output files so that nothing is lost: a file is replaced whole, or not at all.

A run that is refused, fails or is interrupted leaves the old file as it was; only regular
files are written (never a device or a pipe that a rename would replace), and an output may
not be the input it is computed from.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import sys
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from .errors import UsageError


def check_target(path: Path, option: str) -> None:
    """Refuse an output path that is a directory or not a regular file."""
    if path.is_dir():
        raise UsageError(f"{option} {path}: is a directory; give a file path")
    if path.exists() and not path.is_file():
        raise UsageError(f"{option} {path}: is not a regular file (a device or a pipe); give a file path")


def check_outputs(source: Path | None, targets: dict[str, Path]) -> None:
    """Refuse, before anything is read, outputs (by option) that are not regular files, that
    name the input `source` (it would be lost), or that name one file twice."""
    for option, target in targets.items():
        check_target(target, option)
        if source is not None and same_file(source, target):
            raise UsageError(f"{option} {target} is the input file: choose another path, or it is lost")
    for (one, first), (other, second) in itertools.combinations(targets.items(), 2):
        if same_file(first, second):
            raise UsageError(f"{other} {second} is the {one} file: choose another path")


def same_file(a: Path, b: Path) -> bool:
    """Whether two paths name one file (for files that exist), or one path (for those that don't)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return a.resolve() == b.resolve()


@contextlib.contextmanager
def replaced(path: Path, option: str, newline: str | None = None) -> Iterator[IO[str]]:
    """A text stream whose content replaces `path` when the block ends without an error.

    Written to a temporary file beside `path`, then renamed over it. Text that is not valid
    Unicode (a lone surrogate from a JSON string) is written as a backslash escape, so the
    file is always valid UTF-8.
    """
    with (
        _replacing(path, option) as handle,
        os.fdopen(handle, "w", encoding="utf-8", errors="backslashreplace", newline=newline) as out,
    ):
        yield out


@contextlib.contextmanager
def replaced_bytes(path: Path, option: str) -> Iterator[IO[bytes]]:
    """A binary stream (Parquet) whose content replaces `path` as `replaced` does."""
    with _replacing(path, option) as handle, os.fdopen(handle, "wb") as out:
        yield out


@contextlib.contextmanager
def _replacing(path: Path, option: str) -> Iterator[int]:
    """A temporary file beside `path` (its descriptor, which the block closes), renamed over
    `path` when the block ends without an error and removed otherwise."""
    check_target(path, option)
    try:
        handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".part")
    except OSError as error:
        raise UsageError(
            f"{option} {path}: cannot write there ({error.strerror}); choose another path"
        ) from None
    try:
        os.chmod(temporary, _mode(path))
        yield handle
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _mode(path: Path) -> int:
    """The permissions a replaced file keeps: the old file's, or for a new file what the umask
    allows (mkstemp's own 0600 would make a shared or tracked file private)."""
    try:
        return os.stat(path).st_mode & 0o7777
    except OSError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def witness_file_name(number: int, *parts: str) -> str:
    """`01-kind-policy-ids.json`: a file name of the parts, numbered as the report numbers them,
    with nothing a shell or another file system would trip on (spaces, slashes, colons)."""
    name = "-".join(p for p in (f"{number:02d}", *parts) if p)
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", name)[:200] + ".json"


def write_witnesses(directory: Path, option: str, witnesses: Iterable[tuple[str, Any]]) -> list[Path]:
    """Write each (file name, patient document) as a JSON file in `directory`, made if need be,
    replacing a file of that name; the paths written. Each is a record `llr-asp explain` reads."""
    if directory.exists() and not directory.is_dir():
        raise UsageError(f"{option} {directory}: is not a directory; give a folder for the witnesses")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise UsageError(f"{option} {directory}: cannot make the folder ({error.strerror})") from None
    written = []
    for name, witness in witnesses:
        path = directory / name
        with replaced(path, option) as out:
            out.write(json.dumps(witness, indent=2, ensure_ascii=False) + "\n")
        written.append(path)
    return written


def default_state_dir() -> Path:
    """A per-user cache directory: $XDG_CACHE_HOME/llr-asp (~/.cache/llr-asp), or
    %LOCALAPPDATA%\\llr-asp on Windows."""
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "llr-asp"
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "llr-asp"
