"""Unpacks a function's code and its layers into the directories that play /var/task and /opt."""

from __future__ import annotations

import io
import logging
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from plldb.local.function_store import FunctionSpec

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class UnpackedFunction:
    task_root: Path  # plays /var/task
    opt: Path  # plays /opt: the layers, unpacked in order, later ones overwriting earlier ones

    def host_path(self, path: str) -> str:
        """Where a path inside Lambda's file system lives here (only /opt and /var/task move)."""
        for inside, outside in (("/opt", self.opt), ("/var/task", self.task_root)):
            if path == inside or path.startswith(inside + "/"):
                return str(outside) + path[len(inside) :]
        return path


def unpack_function(spec: FunctionSpec, directory: Path) -> UnpackedFunction:
    """Unpacks once per fingerprint; environments of the same code share the directories."""
    unpacked = UnpackedFunction(task_root=directory / "task", opt=directory / "opt")
    if directory.is_dir():
        return unpacked
    directory.parent.mkdir(parents=True, exist_ok=True)
    # Unpack beside the target and rename, so a half-written tree is never taken for a whole one.
    staging = Path(tempfile.mkdtemp(prefix=".unpacking-", dir=directory.parent))
    try:
        unzip(spec.code_zip, staging / "task")
        (staging / "opt").mkdir()
        for layer in spec.layers:
            unzip(layer.zip_bytes, staging / "opt")
        staging.rename(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    logger.debug("unpacked %s (%d layers) into %s", spec.name, len(spec.layers), directory)
    return unpacked


def unzip(data: bytes, target: Path) -> None:
    """Extracts keeping the Unix modes (zipfile drops them) and symlinks; refuses escaping paths."""
    target.mkdir(parents=True, exist_ok=True)
    if not data:
        return  # moto keeps no bytes when the code object was missing from S3
    root = target.resolve()
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        for entry in archive.infolist():
            relative = Path(entry.filename.rstrip("/"))
            if relative.is_absolute() or ".." in relative.parts:
                raise ValueError(f"zip entry escapes its directory: {entry.filename}")
            destination = root / relative
            parent = destination.parent.resolve()  # an earlier symlink entry may point elsewhere
            if parent != root and root not in parent.parents:
                raise ValueError(f"zip entry escapes its directory: {entry.filename}")
            mode = entry.external_attr >> 16
            if entry.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            if destination.is_symlink() or destination.exists():
                destination.unlink()  # a later layer replaces an earlier layer's file
            if stat.S_ISLNK(mode):
                os.symlink(archive.read(entry).decode(), destination)
                continue
            with archive.open(entry) as source, open(destination, "wb") as sink:
                shutil.copyfileobj(source, sink)
            if mode & 0o777:
                destination.chmod(mode & 0o777)
