"""The model registry on MLflow: registration with lineage, integrity, and the production pointer.

The production pointer is the MLflow alias `production` on the registered model (`models:/
diabetes-ridge@production`). Registration writes every lineage tag in the same call that creates
the version, so a version never exists half-tagged. Every download is verified against the
sha256 digest recorded at registration.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError
from pipelines.settings import PRODUCTION_ALIAS
from pipelines.tags import checked_tags
from scoring.model_bundle import GOLDEN_SAMPLE, IntegrityError, file_sha256, verify_bundle

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

# Tags every registered version carries.
TAG_DIGEST = "model_sha256"
TAG_RUN = "run_id"
TAG_DATA = "data_sha256"
TAG_COMMIT = "git_commit"
# The golden sample itself lives in the bundle (golden.json, covered by the manifest): as a
# tag it exceeds Azure ML's 1,000-character limit on tag values (pipelines.tags).
TAG_GOLDEN = "golden_sha256"
TAG_SERVING = "serving_path"  # "numpy" (verified fast path) or "estimator"
TAG_SPEC = "model_spec"  # the model definition (training.spec) the version was trained for
# Where the training data came from ("bundled", a data set `<name>:<n>` or `azureml:<name>:<n>`,
# or a file): with TAG_DATA it lets a release in another workspace find the monitor's reference.
TAG_SOURCE = "data_source"
METRIC_TAG_PREFIX = "metric."

MODEL_ARTIFACT_PATH = "model"
_REF = re.compile(r"^(?P<name>[A-Za-z0-9._-]+)(?:(?P<sep>[@:/])(?P<which>[A-Za-z0-9._-]+))?$")


def quiet_mlflow() -> None:
    """Keep MLflow's housekeeping (table creation, download bars) out of our output."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    import mlflow  # noqa: F401  (configures its loggers on import; adjust them afterwards)

    for name in ("mlflow.store.db.utils", "alembic", "mlflow.tracking.fluent"):
        logging.getLogger(name).setLevel(logging.WARNING)


@dataclass(frozen=True)
class RegisteredVersion:
    """One registered model version, as the rest of the project sees it."""

    name: str
    version: str
    run_id: str
    digest: str
    source: str
    aliases: tuple[str, ...]
    tags: dict[str, str] = field(default_factory=dict)

    def require_digest(self) -> str:
        """The registered sha256; a version without one was not registered by this project."""
        if not self.digest:
            raise MlopsError(
                f"{self.ref} has no recorded sha256; it was not registered by this project"
            )
        return self.digest

    @property
    def metrics(self) -> dict[str, float]:
        """Holdout metrics recorded at registration."""
        return {
            key.removeprefix(METRIC_TAG_PREFIX): float(value)
            for key, value in self.tags.items()
            if key.startswith(METRIC_TAG_PREFIX)
        }

    def require_golden_digest(self) -> str:
        """The sha256 of the bundle's golden.json recorded at registration."""
        if not self.tags.get(TAG_GOLDEN):
            raise MlopsError(
                f"{self.ref} has no golden sample digest ({TAG_GOLDEN}); register it again with "
                "mlops run"
            )
        return self.tags[TAG_GOLDEN]

    @property
    def ref(self) -> str:
        """`name:version`, the unambiguous reference."""
        return f"{self.name}:{self.version}"

    @property
    def in_production(self) -> bool:
        """Whether the production alias points here."""
        return PRODUCTION_ALIAS in self.aliases


def read_golden(bundle: Path, version: RegisteredVersion, expected: str) -> dict[str, Any]:
    """golden.json of a verified bundle, checked against the digest tagged on the version."""
    path = bundle / GOLDEN_SAMPLE
    if not path.is_file() or file_sha256(path) != expected:
        raise MlopsError(
            f"{version.ref} has no golden sample matching its {TAG_GOLDEN} tag; register it "
            "again with mlops run"
        )
    try:
        golden: dict[str, Any] = json.loads(path.read_text())
        rows, predictions = golden["rows"], golden["predictions"]
    except (ValueError, KeyError, TypeError) as error:
        raise MlopsError(f"{version.ref} has an unreadable golden sample ({error})") from error
    if not rows or len(rows) != len(predictions):
        raise MlopsError(f"{version.ref} has an empty or ragged golden sample")
    return golden


class ModelRegistry:
    """Registered versions of one model name in an MLflow registry."""

    def __init__(self, tracking_uri: str, model_name: str) -> None:
        quiet_mlflow()
        from mlflow import MlflowClient

        self.model_name = model_name
        self.tracking_uri = tracking_uri
        self.client: MlflowClient = MlflowClient(tracking_uri, tracking_uri)

    def _wrap(self, version: ModelVersion) -> RegisteredVersion:
        return RegisteredVersion(
            name=version.name,
            version=str(version.version),
            run_id=version.run_id or "",
            digest=version.tags.get(TAG_DIGEST, ""),
            source=version.source or "",
            aliases=tuple(version.aliases or ()),
            tags=dict(version.tags),
        )

    def _exists(self) -> bool:
        from mlflow.exceptions import MlflowException

        try:
            self.client.get_registered_model(self.model_name)
        except MlflowException:
            return False
        return True

    def register(self, run_id: str, tags: dict[str, str]) -> RegisteredVersion:
        """Create a version from the run's model artifact, with all its tags in one call."""
        if TAG_DIGEST not in tags:
            raise MlopsError(
                "registration needs the model digest tag; this is a bug, please report it"
            )
        if not self._exists():
            self.client.create_registered_model(
                self.model_name, description="Diabetes progression, ridge regression."
            )
        version = self.client.create_model_version(
            self.model_name,
            source=f"runs:/{run_id}/{MODEL_ARTIFACT_PATH}",
            run_id=run_id,
            tags=checked_tags(tags, f"the new version of {self.model_name}"),
        )
        return self._wrap(version)

    def versions(self) -> list[RegisteredVersion]:
        """All versions, newest first (empty when nothing is registered)."""
        if not self._exists():
            return []
        found = self.client.search_model_versions(f"name = '{self.model_name}'")
        # Search results carry no aliases; the registered model holds them.
        aliases = self.client.get_registered_model(self.model_name).aliases or {}
        wrapped = [
            replace(
                self._wrap(v),
                aliases=tuple(a for a, n in aliases.items() if str(n) == str(v.version)),
            )
            for v in found
        ]
        return sorted(wrapped, key=lambda v: -int(v.version))

    def production(self) -> RegisteredVersion | None:
        """The version the production alias points at, or None before the first promotion."""
        from mlflow.exceptions import MlflowException

        if not self._exists():
            return None
        try:
            return self._wrap(
                self.client.get_model_version_by_alias(self.model_name, PRODUCTION_ALIAS)
            )
        except MlflowException:
            return None

    def get(self, reference: str) -> RegisteredVersion:
        """Resolve `name@alias`, `name:version`, `name/version`, or a bare version or alias."""
        from mlflow.exceptions import MlflowException

        match = _REF.match(reference)
        if match and match["sep"] is None and not reference.isdigit():
            name, which, by_alias = self.model_name, reference, True
            if reference == self.model_name:
                raise MlopsError(
                    f"'{reference}' names the model but no version; use {reference}@production "
                    f"or {reference}:<version>"
                )
        elif match and match["sep"] is None:
            name, which, by_alias = self.model_name, reference, False
        elif match:
            name, which, by_alias = match["name"], match["which"], match["sep"] == "@"
        else:
            raise MlopsError(
                f"'{reference}' is not a model reference; use NAME@ALIAS or NAME:VERSION, "
                f"for example {self.model_name}@production"
            )
        try:
            if by_alias:
                return self._wrap(self.client.get_model_version_by_alias(name, which))
            return self._wrap(self.client.get_model_version(name, which))
        except MlflowException as error:
            kind = "alias" if by_alias else "version"
            raise MlopsError(
                f"model {name} has no {kind} '{which}'; run `mlops models list` to see what exists"
            ) from error

    def set_production(self, version: RegisteredVersion) -> None:
        """Move the production alias to this version."""
        self.client.set_registered_model_alias(version.name, PRODUCTION_ALIAS, version.version)

    def golden(self, version: RegisteredVersion) -> dict[str, Any]:
        """The golden rows and predictions of a version, read from its verified bundle."""
        expected = version.require_golden_digest()
        with tempfile.TemporaryDirectory() as scratch:
            return read_golden(self.download(version, Path(scratch) / "bundle"), version, expected)

    def download(self, version: RegisteredVersion, dest: Path) -> Path:
        """Download the version's bundle and verify it against its registered digest.

        The bundle lands in `dest/<name>/<version>`, the layout Azure ML mounts models in, so the
        inference server reads the model id from AZUREML_MODEL_DIR as it does in Azure.
        Raises MlopsError on a checksum mismatch or a missing digest.
        """
        import mlflow.artifacts

        version.require_digest()
        if dest.exists():
            shutil.rmtree(dest)
        bundle = dest / version.name / version.version
        bundle.parent.mkdir(parents=True)
        # The version's own source, not models:/ (which adds a metadata file to the folder).
        downloaded = mlflow.artifacts.download_artifacts(
            artifact_uri=version.source,
            dst_path=str(dest / ".download"),
            tracking_uri=self.tracking_uri,
        )
        os.replace(downloaded, bundle)
        shutil.rmtree(dest / ".download", ignore_errors=True)
        try:
            verify_bundle(bundle, version.digest)
        except IntegrityError as error:
            # The folder may be temporary (gone by the time the message is read): name the file.
            detail = str(error).replace(f"model bundle {bundle}", "the bundle")
            detail = detail.replace(str(bundle), "the bundle")
            raise MlopsError(
                f"{version.ref} failed its integrity check ({detail}); do not deploy it, "
                "register a fresh version with mlops run"
            ) from error
        return bundle
