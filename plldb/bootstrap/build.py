"""The build directory: what each bootstrap step leaves for the next one to read."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from plldb.bootstrap.packaging import Artifact
from plldb.errors import MissingStepError

PACKAGE_RECORD = "package.json"
UPLOAD_RECORD = "upload.json"
RENDER_RECORD = "render.json"
ARTIFACTS_DIR = "artifacts"
RENDERED_TEMPLATE = "template.yaml"


@dataclass(frozen=True)
class PackagedArtifact:
    name: str
    sha256: str
    size: int


@dataclass(frozen=True)
class PackageRecord:
    version: str
    artifacts: list[PackagedArtifact]


@dataclass(frozen=True)
class UploadedArtifact:
    name: str
    key: str
    sha256: str
    version_id: str | None
    uploaded: bool


@dataclass(frozen=True)
class UploadRecord:
    bucket: str
    region: str
    artifacts: list[UploadedArtifact]
    bytes_uploaded: int = 0

    def by_name(self) -> dict[str, UploadedArtifact]:
        return {artifact.name: artifact for artifact in self.artifacts}


@dataclass(frozen=True)
class RenderRecord:
    bucket: str
    region: str
    template_key: str
    template_url: str
    template_sha256: str
    template_version_id: str | None = None
    artifacts: dict[str, str] = field(default_factory=dict)


class BuildDir:
    """Reads and writes the step records under one build directory."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def artifact_path(self, name: str) -> Path:
        return self.path / ARTIFACTS_DIR / name

    def write_package(self, version: str, artifacts: list[Artifact]) -> PackageRecord:
        for artifact in artifacts:
            target = self.artifact_path(artifact.name)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(artifact.data)
        record = PackageRecord(
            version=version,
            artifacts=[PackagedArtifact(a.name, a.sha256, a.size) for a in artifacts],
        )
        # A new package makes the later steps' records stale.
        for stale in (UPLOAD_RECORD, RENDER_RECORD):
            (self.path / stale).unlink(missing_ok=True)
        self._write(PACKAGE_RECORD, asdict(record))
        return record

    def read_package(self) -> PackageRecord:
        data = self._read(PACKAGE_RECORD, "package")
        return PackageRecord(
            version=data["version"],
            artifacts=[PackagedArtifact(**item) for item in data["artifacts"]],
        )

    def read_artifact(self, packaged: PackagedArtifact) -> Artifact:
        path = self.artifact_path(packaged.name)
        if not path.is_file():
            raise MissingStepError(
                f"Packaged artifact {path} is missing: run `plldb bootstrap package` first"
            )
        artifact = Artifact(packaged.name, path.read_bytes())
        if artifact.sha256 != packaged.sha256:
            raise MissingStepError(
                f"Packaged artifact {path} changed after packaging: run "
                "`plldb bootstrap package` again"
            )
        return artifact

    def write_upload(self, record: UploadRecord) -> None:
        (self.path / RENDER_RECORD).unlink(missing_ok=True)
        self._write(UPLOAD_RECORD, asdict(record))

    def read_upload(self) -> UploadRecord:
        data = self._read(UPLOAD_RECORD, "upload")
        return UploadRecord(
            bucket=data["bucket"],
            region=data["region"],
            artifacts=[UploadedArtifact(**item) for item in data["artifacts"]],
            bytes_uploaded=data.get("bytes_uploaded", 0),
        )

    def write_render(self, record: RenderRecord, template_text: str) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / RENDERED_TEMPLATE).write_text(template_text, encoding="utf-8")
        self._write(RENDER_RECORD, asdict(record))

    def read_render(self) -> RenderRecord:
        return RenderRecord(**self._read(RENDER_RECORD, "render"))

    def rendered_template_text(self) -> str:
        path = self.path / RENDERED_TEMPLATE
        if not path.is_file():
            raise MissingStepError(f"{path} is missing: run `plldb bootstrap render` first")
        return path.read_text(encoding="utf-8")

    def _write(self, name: str, data: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        (self.path / name).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")

    def _read(self, name: str, step: str) -> dict:
        path = self.path / name
        if not path.is_file():
            raise MissingStepError(
                f"Nothing from the {step} step in {self.path}: run `plldb bootstrap {step}` first"
            )
        try:
            return json.loads(path.read_text())
        except (ValueError, TypeError) as error:
            raise MissingStepError(
                f"{path} is unreadable ({error}): run `plldb bootstrap {step}` again"
            ) from error
