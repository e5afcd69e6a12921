"""Writing files so that a reader never sees half of one, nor half of a set.

Every file is written to a temporary file beside it and renamed into place. A set of
files (one run's feeds and pages) is written in two steps: first every changed file
to its temporary file, then, only when all of them were written, every rename. A
full disk or an unwritable directory therefore stops the run before anything was
replaced: the previous files stay as they were, and no temporary file is left.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aggregator.errors import WriteError, os_advice

TEMPORARY_SUFFIX = ".tmp"
# tempfile.mkstemp's names: our prefix, eight random characters, our suffix.
_OURS = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _temporary_name(path: Path) -> str:
    return f".{path.name}."


def _stage(path: Path, data: bytes) -> Path:
    """``data`` in a new temporary file beside ``path``, on disk (fsync'd)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    import tempfile  # (and with it random): only when something is written

    handle, name = tempfile.mkstemp(
        prefix=_temporary_name(path), suffix=TEMPORARY_SUFFIX, dir=path.parent
    )
    temporary = Path(name)
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        temporary.chmod(0o644)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


def _unchanged(path: Path, data: bytes) -> bool:
    try:
        return path.stat().st_size == len(data) and path.read_bytes() == data
    except (FileNotFoundError, NotADirectoryError):
        return False


def _fault(path: Path, error: OSError) -> WriteError:
    return WriteError(f"{path}: cannot write: {os_advice(error)}")


@dataclass
class Staged:
    """A set of files written to temporary files, waiting to be renamed into place."""

    pending: list[tuple[Path, Path]] = field(default_factory=list)  # (temporary, final)
    unchanged: list[Path] = field(default_factory=list)

    def install(self) -> list[Path]:
        """Rename every file into place; returns the paths written."""
        written = []
        try:
            for temporary, path in self.pending:
                try:
                    temporary.replace(path)
                except OSError as error:
                    raise _fault(path, error) from error
                written.append(path)
        finally:
            self.discard()
        for folder in {path.parent for path in written}:
            _sync_directory(folder)
        return written

    def discard(self) -> None:
        """Remove the temporary files not (yet) renamed."""
        for temporary, _ in self.pending:
            temporary.unlink(missing_ok=True)
        self.pending = []


def stage_files(directory: Path, files: Mapping[str, bytes]) -> Staged:
    """Write every ``name → bytes`` under ``directory`` that changed to a temporary file.

    Files that already hold their bytes are left alone (and keep their modification
    time). Raises :class:`WriteError` naming the path at fault when any file cannot
    be written; its temporary files are removed then, and nothing was replaced.
    """
    staged = Staged()
    try:
        for name, data in files.items():
            path = directory / name
            try:
                if _unchanged(path, data):
                    staged.unchanged.append(path)
                else:
                    staged.pending.append((_stage(path, data), path))
            except OSError as error:
                raise _fault(path, error) from error
    except BaseException:
        staged.discard()
        raise
    return staged


def write_files(directory: Path, files: Mapping[str, bytes]) -> tuple[list[Path], list[Path]]:
    """Stage and install: the paths written, and the paths left as they were."""
    staged = stage_files(directory, files)
    return staged.install(), staged.unchanged


def write_if_changed(path: Path, data: bytes) -> bool:
    """Write one file through a temporary file and a rename, unless it holds ``data``."""
    written, _ = write_files(path.parent, {path.name: data})
    return bool(written)


def _sync_directory(folder: Path) -> None:
    """Make the renames themselves durable (a power cut must not undo them)."""
    try:
        handle = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        os.fsync(handle)
    except OSError:
        pass  # some file systems cannot sync a directory; the renames are still atomic
    finally:
        os.close(handle)


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete temporary files a killed run left in ``directory`` or its folders.

    Call holding the write lock, when no other run is writing. Only names of our own
    making (``.<file name>.<8 random characters>.tmp``, see :func:`_stage`) are removed.
    """
    removed: list[Path] = []
    try:
        folders = [directory, *(p for p in directory.iterdir() if p.is_dir())]
    except OSError:
        return removed
    for folder in folders:
        try:
            candidates = [p for p in folder.glob(f".*{TEMPORARY_SUFFIX}") if _OURS.match(p.name)]
        except OSError:
            continue
        for candidate in candidates:
            try:
                candidate.unlink()
            except OSError:
                continue
            removed.append(candidate)
    return removed
