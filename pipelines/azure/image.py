"""The scoring image: its build context, and its build in the environment's ACR.

The build context is one folder:

    Dockerfile        scoring/Dockerfile, at the root of the context
    scoring/          the scoring package (entry script, requirements, settings) and the
                      API specs (swagger*.json) written from the bundle's contract
    model/NAME/VER/   the model bundle, downloaded and verified against its registered sha256
    model.json        which version it is: name, version, digest

`mlops package` writes it locally (inspect it, `docker build` it); on Azure it is sent to an
ACR build task (`az acr build`, which streams the build log and needs no Docker engine), tagged
`diabetes-scoring:<model version>` in the stack's own registry. Each environment's ACR gets the
image built from the same verified bundle and the same pinned requirements; the ACR admin user
stays off (the build authenticates with the caller's Azure identity).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from infra.outputs import StackOutputs
from pipelines.azure.client import AzureClients
from pipelines.errors import MlopsError
from pipelines.registry import ModelRegistry, RegisteredVersion
from pipelines.scoring_env import write_api_specs
from pipelines.settings import PROJECT_ROOT

SCORING_DIR = PROJECT_ROOT / "scoring"
DOCKERFILE = SCORING_DIR / "Dockerfile"
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".mypy_cache")


def build_context(registry: ModelRegistry, version: RegisteredVersion, dest: Path) -> Path:
    """Assemble the image build context in `dest` (replaced if it exists); returns it."""
    if not DOCKERFILE.is_file():
        raise MlopsError(
            f"{DOCKERFILE.relative_to(PROJECT_ROOT)} is missing; the scoring image cannot be built"
        )
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    shutil.copytree(SCORING_DIR, dest / "scoring", ignore=_IGNORED)
    shutil.copy2(DOCKERFILE, dest / "Dockerfile")
    # Verified against the registered digest; registries differ in where under `dest` it lands.
    staging = dest / ".download"
    # Laid out as Azure ML mounts models (`<name>/<version>`): the server reads the id from it.
    bundle = dest / "model" / version.name / version.version
    bundle.parent.mkdir(parents=True)
    shutil.move(registry.download(version, staging), bundle)
    shutil.rmtree(staging, ignore_errors=True)
    # The server reads swagger*.json from AML_APP_ROOT, the image's scoring folder.
    write_api_specs(bundle, dest / "scoring")
    (dest / "model.json").write_text(
        json.dumps(
            {"name": version.name, "version": version.version, "model_sha256": version.digest},
            indent=2,
        )
    )
    return dest


def image_reference(outputs: StackOutputs, version: RegisteredVersion) -> str:
    """`<acr>/diabetes-scoring:<version>`."""
    from pipelines.azure.entities import image_tag, scoring_image

    return scoring_image(outputs, image_tag(version))


def image_exists(clients: AzureClients, outputs: StackOutputs, version: RegisteredVersion) -> bool:
    """Whether the stack's ACR already holds the image of this model version."""
    from pipelines.azure.entities import SCORING_IMAGE_REPOSITORY, image_tag

    status = clients.az(
        "acr", "repository", "show",
        "--name", outputs.acr_name,
        "--image", f"{SCORING_IMAGE_REPOSITORY}:{image_tag(version)}",
        "--subscription", outputs.subscription_id,
        "--output", "none",
        quiet=True,
    )  # fmt: skip
    return status == 0


def acr_build(
    clients: AzureClients, outputs: StackOutputs, version: RegisteredVersion, context: Path
) -> str:
    """Build the context in the stack's ACR with a build task; returns the image reference."""
    from pipelines.azure.entities import SCORING_IMAGE_REPOSITORY, image_tag

    tag = f"{SCORING_IMAGE_REPOSITORY}:{image_tag(version)}"
    status = clients.az(
        "acr", "build",
        "--registry", outputs.acr_name,
        "--subscription", outputs.subscription_id,
        "--image", tag,
        "--file", str(context / "Dockerfile"),
        "--build-arg", f"MODEL_SHA256={version.digest}",
        "--build-arg", f"MODEL_VERSION={version.ref}",
        "--platform", "linux/amd64",
        str(context),
    )  # fmt: skip
    if status != 0:
        raise MlopsError(
            f"the ACR build of {tag} in {outputs.acr_name} failed (exit code {status}); its log "
            "is above"
        )
    return image_reference(outputs, version)


def ensure_image(
    clients: AzureClients,
    outputs: StackOutputs,
    registry: ModelRegistry,
    version: RegisteredVersion,
    scratch: Path,
) -> str:
    """The image of this version in the stack's ACR, built first if it is not there yet."""
    if image_exists(clients, outputs, version):
        return image_reference(outputs, version)
    context = build_context(registry, version, scratch / "image")
    return acr_build(clients, outputs, version, context)
