"""The scoring image: one artifact, tagged by what it is built from, from QA to production.

The build context is one folder:

    Dockerfile        scoring/Dockerfile, at the root of the context
    scoring/          the scoring package (entry script, requirements, settings) and the
                      API specs (swagger*.json) written from the bundle's contract
    model/NAME/VER/   the model bundle, downloaded and verified against its registered sha256
    model.json        which version it is: name, version, digest

The tag is the image digest: sha256 over the model (name, version, registered digest) and every
other input of the build (the Dockerfile, the scoring code with its requirements and lock).
Change any of them and the tag changes, so an existing tag is skipped only when it is exactly
this build; the API specs and model.json are derived from the bundle, which the model digest
covers.

`mlops package` writes the context locally (inspect it, `docker build` it); on Azure it is sent
to an ACR build task (`az acr build`, which streams the build log and needs no Docker engine),
in the stack's own registry. A release builds (or finds) the image in the QA registry, and
production gets that very image copied into its own registry with `az acr import`, which copies
the manifest and its layers (Learn, "Import container images to a container registry",
container-registry-import-images: "import images from a development registry to a production
registry"), so the bytes QA's smoke test vouched for are the bytes production serves. The ACR
admin user stays off: build and import authenticate with the caller's Azure identity.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pipelines.azure.snapshot import tree_digest
from pipelines.errors import MlopsError
from pipelines.registry import ModelRegistry, RegisteredVersion
from pipelines.scoring_env import SCORING_LOCK, write_api_specs
from pipelines.settings import PROJECT_ROOT

if TYPE_CHECKING:
    from infra.outputs import StackOutputs
    from pipelines.azure.client import AzureClients

SCORING_DIR = PROJECT_ROOT / "scoring"
DOCKERFILE = SCORING_DIR / "Dockerfile"
# The hashed lock the Dockerfile installs (pipelines.locks ONLINE, `make locks`). It lives in
# scoring/, which the digest covers as a whole; named here as well so the digest keeps it even if
# the lock moves out of that folder.
LOCK_FILES: tuple[Path, ...] = (SCORING_LOCK,)
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


def _copy_sources(dest: Path) -> None:
    """The image's inputs besides the model, laid out as the build context holds them."""
    if not DOCKERFILE.is_file():
        raise MlopsError(
            f"{DOCKERFILE.relative_to(PROJECT_ROOT)} is missing; the scoring image cannot be built"
        )
    shutil.copytree(SCORING_DIR, dest / "scoring", ignore=_IGNORED)
    shutil.copy2(DOCKERFILE, dest / "Dockerfile")


def _model_identity(version: RegisteredVersion) -> dict[str, str]:
    return {"name": version.name, "version": version.version, "model_sha256": version.digest}


def image_digest(version: RegisteredVersion, scratch: Path) -> str:
    """sha256 of (model name, version, registered digest) and every file the build copies."""
    version.require_digest()
    sources = scratch / "image-sources"
    if sources.exists():
        shutil.rmtree(sources)
    sources.mkdir(parents=True)
    _copy_sources(sources)
    digest = hashlib.sha256()
    digest.update(json.dumps(_model_identity(version), sort_keys=True).encode())
    digest.update(tree_digest(sources).encode())
    shutil.rmtree(sources)
    for lock in LOCK_FILES:
        digest.update(lock.name.encode())
        digest.update(hashlib.sha256(lock.read_bytes()).digest())
    return digest.hexdigest()


def build_context(registry: ModelRegistry, version: RegisteredVersion, dest: Path) -> Path:
    """Assemble the image build context in `dest` (replaced if it exists); returns it."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    _copy_sources(dest)
    # Verified against the registered digest; registries differ in where under `dest` it lands.
    staging = dest / ".download"
    # Laid out as Azure ML mounts models (`<name>/<version>`): the server reads the id from it.
    bundle = dest / "model" / version.name / version.version
    bundle.parent.mkdir(parents=True)
    shutil.move(registry.download(version, staging), bundle)
    shutil.rmtree(staging, ignore_errors=True)
    # The server reads swagger*.json from AML_APP_ROOT, the image's scoring folder.
    write_api_specs(bundle, dest / "scoring")
    (dest / "model.json").write_text(json.dumps(_model_identity(version), indent=2))
    return dest


@dataclass(frozen=True)
class ScoringImage:
    """The image of one model version: its repository and its tag (the image digest)."""

    version: RegisteredVersion
    digest: str

    @property
    def tag(self) -> str:
        """`<repository>:<digest>`, as `az acr` names an image inside a registry."""
        from pipelines.azure.entities import scoring_image_repository

        return f"{scoring_image_repository()}:{self.digest}"

    def reference(self, outputs: StackOutputs) -> str:
        """`<acr login server>/<repository>:<digest>`: what a deployment pulls."""
        from pipelines.azure.entities import scoring_image

        return scoring_image(outputs, self.digest)


def scoring_image(version: RegisteredVersion, scratch: Path) -> ScoringImage:
    """The image of this version as the checkout would build it now."""
    return ScoringImage(version, image_digest(version, scratch))


def acr_resource_id(outputs: StackOutputs) -> str:
    """ARM id of the stack's registry (it lives in the stack's resource group)."""
    return (
        f"/subscriptions/{outputs.subscription_id}/resourceGroups/{outputs.resource_group}"
        f"/providers/Microsoft.ContainerRegistry/registries/{outputs.acr_name}"
    )


def image_exists(clients: AzureClients, outputs: StackOutputs, image: ScoringImage) -> bool:
    """Whether the stack's ACR holds exactly this image (its digest tag)."""
    status = clients.az(
        "acr", "repository", "show",
        "--name", outputs.acr_name,
        "--image", image.tag,
        "--subscription", outputs.subscription_id,
        "--output", "none",
        quiet=True,
    )  # fmt: skip
    return status == 0


def acr_build(
    clients: AzureClients, outputs: StackOutputs, image: ScoringImage, context: Path
) -> str:
    """Build the context in the stack's ACR with a build task; returns the image reference."""
    version = image.version
    status = clients.az(
        "acr", "build",
        "--registry", outputs.acr_name,
        "--subscription", outputs.subscription_id,
        "--image", image.tag,
        "--file", str(context / "Dockerfile"),
        "--build-arg", f"MODEL_SHA256={version.digest}",
        "--build-arg", f"MODEL_VERSION={version.ref}",
        "--platform", "linux/amd64",
        str(context),
    )  # fmt: skip
    if status != 0:
        raise MlopsError(
            f"the ACR build of {image.tag} in {outputs.acr_name} failed (exit code {status}); "
            "its log is above"
        )
    return image.reference(outputs)


def acr_import(
    clients: AzureClients, source: StackOutputs, dest: StackOutputs, image: ScoringImage
) -> str:
    """Copy the image from one stack's ACR into another's (same manifest); returns its reference.

    `az acr import --registry <source resource id>` works across subscriptions of one tenant
    with the caller's identity (Learn, container-registry-import-images).
    """
    status = clients.az(
        "acr", "import",
        "--name", dest.acr_name,
        "--subscription", dest.subscription_id,
        "--source", image.tag,
        "--registry", acr_resource_id(source),
        "--image", image.tag,
    )  # fmt: skip
    if status != 0:
        raise MlopsError(
            f"importing {image.tag} from {source.acr_name} into {dest.acr_name} failed (exit code "
            f"{status}); the caller needs AcrPull on {source.acr_name} and AcrPush on "
            f"{dest.acr_name}"
        )
    return image.reference(dest)


def ensure_image(
    clients: AzureClients,
    outputs: StackOutputs,
    registry: ModelRegistry,
    image: ScoringImage,
    scratch: Path,
    source: StackOutputs | None = None,
) -> str:
    """This exact image in the stack's ACR: already there, imported from `source`, or built.

    With a `source` stack (production importing QA's image) the image must exist there: a
    production rollout never builds an image QA has not served.
    """
    if image_exists(clients, outputs, image):
        return image.reference(outputs)
    if source is not None:
        if not image_exists(clients, source, image):
            raise MlopsError(
                f"{image.tag} is not in {source.acr_name}, the {source.environment} registry; "
                f"release {image.version.ref} to {source.environment} first (mlops release "
                "--stage qa) so production gets the image QA tested"
            )
        return acr_import(clients, source, outputs, image)
    context = build_context(registry, image.version, scratch / "image")
    return acr_build(clients, outputs, image, context)
