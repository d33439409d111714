"""The shared Azure ML registry behind the project's `ModelRegistry` interface.

Training, gate and registration run in one workspace (dev); QA and production deploy from
other workspaces. Azure ML's MLflow registry is per workspace ("cross-workspace operations
are not supported", and organisation registries are not reachable through MLflow), and model
aliases are not part of Azure ML's documented MLflow support. So on Azure:

- `register` keeps the MLflow registration in the training workspace (lineage to the run,
  same tags as locally) and then shares that model version into the shared Azure ML registry
  with `ml_client.models.share` (azure-ai-ml `operations/_model_operations.py`: it imports the
  workspace asset by its asset id into the registry, so the registry's copy keeps its tags and
  its link to the job that trained it; re-uploading the files would lose the link), under the
  same name and version: no retraining per environment. The shared copy's bytes are then
  verified against the registered digest;
- everything that reads (`versions`, `get`, `production`, `download`) reads the shared
  registry, so the gate in dev and the release in qa and prod see the same models;
- the production pointer is a tag on the registry's model versions, `mlops.production_since`
  = when the version was promoted to production. The newest such tag wins, so moving the
  pointer is one write, like the local alias, and a rollback is a newer write on an older
  version.
"""

from __future__ import annotations

import datetime as dt
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.azure.client import azure_call
from pipelines.errors import MlopsError
from pipelines.registry import _REF, TAG_DIGEST, TAG_RUN, ModelRegistry, RegisteredVersion
from pipelines.settings import PRODUCTION_ALIAS, Settings
from pipelines.steps import Tracking
from pipelines.tags import checked_tags
from scoring.model_bundle import MANIFEST, IntegrityError, verify_bundle

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

PRODUCTION_TAG = "mlops.production_since"
PREVIOUS_TAG = "mlops.previous_production"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="microseconds")


class AzureModelRegistry(ModelRegistry):
    """Registrations in the workspace's MLflow, promotion and reads through the shared registry."""

    def __init__(
        self,
        tracking_uri: str | None,
        model_name: str,
        shared: MLClient,
        registry_name: str,
        source: str = "",
        workspace: MLClient | None = None,
    ) -> None:
        if tracking_uri:
            super().__init__(tracking_uri, model_name)
        else:
            # Read-only use (a release in qa or prod): no workspace MLflow client is created,
            # which would cost a metadata round trip to Azure for nothing.
            self.model_name = model_name
            self.tracking_uri = ""
        self.shared = shared
        self.registry_name = registry_name
        self.source = source or self.tracking_uri
        self.workspace = workspace  # the training workspace's MLClient, which shares models

    # -- reading ---------------------------------------------------------------------------
    def _wrap_model(self, model: Any, production: str | None = None) -> RegisteredVersion:
        tags = {str(k): str(v) for k, v in (model.tags or {}).items()}
        version = str(model.version)
        return RegisteredVersion(
            name=str(model.name),
            version=version,
            run_id=tags.get(TAG_RUN, ""),
            digest=tags.get(TAG_DIGEST, ""),
            source=f"azureml://registries/{self.registry_name}/models/{model.name}"
            f"/versions/{version}",
            aliases=(PRODUCTION_ALIAS,) if production == version else (),
            tags=tags,
        )

    def _models(self) -> list[Any]:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return list(self.shared.models.list(name=self.model_name))
        except ResourceNotFoundError:
            return []

    @staticmethod
    def _production_of(models: list[Any]) -> str | None:
        promoted = [
            (str(m.tags[PRODUCTION_TAG]), str(m.version))
            for m in models
            if (m.tags or {}).get(PRODUCTION_TAG)
        ]
        return max(promoted)[1] if promoted else None

    def versions(self) -> list[RegisteredVersion]:
        """Every version in the shared registry, newest first, with the production marker."""
        models = self._models()
        production = self._production_of(models)
        wrapped = [self._wrap_model(model, production) for model in models]
        return sorted(wrapped, key=lambda v: -int(v.version) if v.version.isdigit() else 0)

    def production(self) -> RegisteredVersion | None:
        """The version most recently promoted to production, or None before the first one."""
        models = self._models()
        production = self._production_of(models)
        found = [m for m in models if str(m.version) == production]
        return self._wrap_model(found[0], production) if found else None

    def _get_model(self, name: str, version: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        try:
            return self.shared.models.get(name=name, version=version)
        except ResourceNotFoundError as error:
            raise MlopsError(
                f"model {name} has no version '{version}' in registry {self.registry_name}; run "
                "`mlops models list --target azure` to see what exists"
            ) from error

    def get(self, reference: str) -> RegisteredVersion:
        """`name:version`, `name@production`, a bare version, or `production`."""
        match = _REF.match(reference)
        if not match:
            raise MlopsError(
                f"'{reference}' is not a model reference; use NAME@production or NAME:VERSION"
            )
        if match["sep"] is None:
            name = self.model_name
            which = reference
            by_alias = not reference.isdigit()
        else:
            name, which, by_alias = match["name"], match["which"], match["sep"] == "@"
        if by_alias:
            if which != PRODUCTION_ALIAS:
                raise MlopsError(
                    f"the Azure registry knows only the '{PRODUCTION_ALIAS}' pointer, not "
                    f"'{which}'; use {name}:<version> or {name}@{PRODUCTION_ALIAS}"
                )
            production = self.production() if name == self.model_name else None
            if production is None:
                raise MlopsError(
                    f"model {name} has no production version yet; release one with "
                    "`mlops release --target azure`"
                )
            return production
        pointer = self._production_of(self._models())
        return self._wrap_model(self._get_model(name, which), pointer)

    def download(self, version: RegisteredVersion, dest: Path) -> Path:
        """Download from the shared registry into `dest` and verify the registered digest."""
        version.require_digest()
        with tempfile.TemporaryDirectory() as scratch:
            self.shared.models.download(
                name=version.name, version=version.version, download_path=scratch
            )
            manifests = sorted(Path(scratch).rglob(MANIFEST))
            if len(manifests) != 1:
                raise MlopsError(
                    f"{version.ref} in registry {self.registry_name} holds {len(manifests)} model "
                    "bundles instead of one; register it again"
                )
            if dest.exists():
                shutil.rmtree(dest)
            shutil.copytree(manifests[0].parent, dest)
        try:
            verify_bundle(dest, version.digest)
        except IntegrityError as error:
            raise MlopsError(
                f"{version.ref} failed its integrity check ({error}); do not deploy it, "
                "register a fresh version"
            ) from error
        return dest

    # -- writing ---------------------------------------------------------------------------
    def register(self, run_id: str, tags: dict[str, str]) -> RegisteredVersion:
        """Register in the workspace (lineage to the run), then promote to the shared registry."""
        if not self.tracking_uri:
            raise MlopsError(
                "registration runs against the training workspace; use the dev stack's outputs"
            )
        # The source goes on the workspace version: sharing copies its tags to the registry.
        in_workspace = super().register(run_id, {**tags, "source": self.source})
        return self.promote(in_workspace)

    def promote(self, in_workspace: RegisteredVersion) -> RegisteredVersion:
        """Share a workspace version into the shared registry (idempotent), then verify it."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            existing = self.shared.models.get(name=in_workspace.name, version=in_workspace.version)
        except ResourceNotFoundError:
            existing = None
        if existing is not None:
            found = self._wrap_model(existing)
            if found.digest != in_workspace.digest:
                raise MlopsError(
                    f"registry {self.registry_name} already holds {in_workspace.ref} with another "
                    f"model (sha256 {found.digest[:12]}…, not {in_workspace.digest[:12]}…); "
                    "another workspace registered the same version number"
                )
            return found
        if self.workspace is None:
            raise MlopsError(
                f"sharing {in_workspace.ref} into registry {self.registry_name} needs the training "
                "workspace; register with the dev stack's outputs"
            )
        workspace = self.workspace
        azure_call(
            f"sharing {in_workspace.ref} into registry {self.registry_name}",
            lambda: workspace.models.share(
                name=in_workspace.name,
                version=in_workspace.version,
                share_with_name=in_workspace.name,
                share_with_version=in_workspace.version,
                registry_name=self.registry_name,
            ),
        )
        shared = self._wrap_model(self._get_model(in_workspace.name, in_workspace.version))
        if shared.digest != in_workspace.digest:
            raise MlopsError(
                f"the shared copy of {in_workspace.ref} in registry {self.registry_name} carries "
                f"sha256 {shared.digest[:12]}…, not {in_workspace.digest[:12]}…; archive it and "
                "register a fresh version"
            )
        with tempfile.TemporaryDirectory() as scratch:
            self.download(shared, Path(scratch) / "model")  # verifies the bytes, or raises
        return shared

    def set_production(self, version: RegisteredVersion) -> None:
        """Point production at this version: one tag write on the registry's model version."""
        previous = self.production()
        model = self._get_model(version.name, version.version)
        tags = dict(model.tags or {})
        tags[PRODUCTION_TAG] = _now()
        if previous is not None and previous.version != version.version:
            tags[PREVIOUS_TAG] = previous.version
        model.tags = checked_tags(tags, version.ref)
        self.shared.models.create_or_update(model)


class AzureTracking(Tracking):
    """The workspace's MLflow tracking server with the shared registry as its model registry."""

    def __init__(
        self,
        settings: Settings,
        shared: MLClient,
        registry_name: str,
        source: str = "",
        workspace: MLClient | None = None,
    ) -> None:
        super().__init__(settings)
        self.registry = AzureModelRegistry(
            settings.tracking_uri, settings.model_name, shared, registry_name, source, workspace
        )
