"""Builds the Lambda function and layer zips: pure, deterministic, no AWS calls."""

from __future__ import annotations

import ast
import hashlib
import io
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from plldb.bootstrap.names import LAYER_ARTIFACT, function_artifact
from plldb.errors import TemplateError

# Every entry gets this timestamp and normalised permissions, so unchanged sources
# give byte-identical zips and an unchanged artifact is never uploaded again.
_FIXED_DATE = (1980, 1, 1, 0, 0, 0)
_FILE_MODE = 0o644
_EXECUTABLE_MODE = 0o755
_SKIPPED_DIRS = {"__pycache__", ".pytest_cache", ".mypy_cache"}
_SKIPPED_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True)
class Artifact:
    """One zip to upload: its path relative to the version prefix and its bytes."""

    name: str
    data: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> int:
        return len(self.data)


def package_all(cloudformation_dir: Path) -> list[Artifact]:
    """Every function zip, then the layer zip."""
    artifacts = package_functions(cloudformation_dir / "lambda_functions")
    functions_dir = cloudformation_dir / "lambda_functions"
    artifacts.append(package_layer(cloudformation_dir / "layer", functions_dir))
    return artifacts


def function_names(functions_dir: Path) -> list[str]:
    """Each public module is a function; modules starting with `_` are shared helpers."""
    return sorted(path.stem for path in functions_dir.glob("*.py") if not path.name.startswith("_"))


def package_functions(functions_dir: Path) -> list[Artifact]:
    if not functions_dir.is_dir():
        raise TemplateError(f"Lambda function sources not found in {functions_dir}")
    artifacts = []
    for name in function_names(functions_dir):
        modules = [f"{name}.py", *sorted(_helper_modules(functions_dir, name))]
        entries = [
            (module, (functions_dir / module).read_bytes(), _FILE_MODE) for module in modules
        ]
        artifacts.append(Artifact(function_artifact(name), build_zip(entries)))
    return artifacts


def package_layer(layer_dir: Path, functions_dir: Path | None = None) -> Artifact:
    """The layer keeps its tree, so the exec wrapper lands at /opt/bin/bootstrap.

    The relay runtime's modules get the `_helper.py` modules of `functions_dir` they import
    (the protocol), beside them: one source for the functions and the layer.
    """
    if not (layer_dir / "bin" / "bootstrap").is_file():
        raise TemplateError(f"Layer exec wrapper not found at {layer_dir / 'bin' / 'bootstrap'}")
    entries = tree_entries(layer_dir)
    for name, _, _ in list(entries):
        if functions_dir is not None and name.endswith(".py"):
            relative = Path(name)
            for imported in sorted(_imported_names(layer_dir / relative)):
                helper = functions_dir / f"{imported}.py"
                if imported.startswith("_") and helper.is_file():
                    entry = (relative.parent / helper.name).as_posix()
                    entries.append((entry, helper.read_bytes(), _FILE_MODE))
    return Artifact(LAYER_ARTIFACT, build_zip(sorted(set(entries))))


def tree_entries(directory: Path) -> list[tuple[str, bytes, int]]:
    """(name, content, mode) of every file under `directory`, caches left out; `bin/` executable."""
    entries = []
    for path in sorted(directory.rglob("*")):
        relative = path.relative_to(directory)
        if path.is_file() and not _skipped(relative):
            entries.append((relative.as_posix(), path.read_bytes(), _mode_for(relative)))
    return entries


def build_zip(entries: list[tuple[str, bytes, int]]) -> bytes:
    """A zip of (name, content, mode) entries, sorted by name, with fixed timestamps."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, content, mode in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=_FIXED_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, so Lambda honours the permission bits
            info.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(info, content, compresslevel=9)
    return buffer.getvalue()


def _helper_modules(functions_dir: Path, module: str) -> set[str]:
    """The `_helper.py` files a module imports, followed transitively."""
    found: set[str] = set()
    pending = [f"{module}.py"]
    while pending:
        source = functions_dir / pending.pop()
        for imported in _imported_names(source):
            helper = f"{imported}.py"
            if imported.startswith("_") and helper not in found:
                if not (functions_dir / helper).is_file():
                    continue
                found.add(helper)
                pending.append(helper)
    return found


def _imported_names(source: Path) -> set[str]:
    try:
        tree = ast.parse(source.read_text(encoding="utf-8"), filename=str(source))
    except SyntaxError as error:
        raise TemplateError(f"{source}: line {error.lineno}: {error.msg}") from error
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _skipped(relative: Path) -> bool:
    return bool(_SKIPPED_DIRS.intersection(relative.parts)) or relative.suffix in _SKIPPED_SUFFIXES


def _mode_for(relative: Path) -> int:
    # Decided by place, not by the checkout's file mode, which varies between machines.
    return _EXECUTABLE_MODE if relative.parts[0] == "bin" else _FILE_MODE
