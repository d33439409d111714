"""`mlops package`: the scoring image (a build context locally, an ACR build on Azure)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from pipelines import lifecycle
from pipelines.commands.options import ModelName, Target, TargetName
from pipelines.console import console


def package_command(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model reference: NAME:VERSION or NAME@production. "
            "[default: the newest registered version]",
        ),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            help="Local target: where the build context goes. "
            "[default: .mlops/package/NAME-VERSION]",
            file_okay=False,
        ),
    ] = None,
    model_name: ModelName = None,
    target: Target = TargetName.local,
) -> None:
    """The scoring image: a build context locally, an ACR build tagged by its digest on Azure."""
    from pipelines.azure.image import build_context
    from pipelines.console import display_path

    if target is TargetName.azure:
        _package_azure(model, model_name)
        return
    from pipelines.registry import ModelRegistry
    from pipelines.settings import load_settings

    settings = load_settings(model_name)
    registry = ModelRegistry(settings.tracking_uri, settings.model_name)
    version = lifecycle.resolve(registry, model)
    dest = output or settings.state_dir / "package" / f"{version.name}-{version.version}"
    with console.status(f"Assembling the image build context for {version.ref}…"):
        build_context(registry, version, dest)
    console.print(f"[green]✓[/] build context for {version.ref} (sha256 {version.digest[:12]}…)")
    console.print(display_path(dest))


def _package_azure(model: str | None, model_name: str | None) -> None:
    from pipelines.azure.image import acr_build, build_context, image_exists, scoring_image
    from pipelines.azure.outputs import StackFiles
    from pipelines.targets.azure import from_environment

    settings, azure = from_environment(model_name)
    outputs = StackFiles.from_environment(settings).current()
    version = lifecycle.resolve(azure.registry, model)
    with tempfile.TemporaryDirectory() as scratch:
        image = scoring_image(version, Path(scratch))
        if image_exists(azure.clients, outputs, image):
            # The tag is the digest of every input: this exact image is built already.
            console.print(f"{image.tag} is already in {outputs.acr_name}: nothing to build")
            reference = image.reference(outputs)
        else:
            with console.status(f"Assembling the image build context for {version.ref}…"):
                context = build_context(azure.registry, version, Path(scratch) / "image")
            console.print(f"ACR build of {image.tag} in {outputs.acr_name} (log follows)")
            reference = acr_build(azure.clients, outputs, image, context)
    console.print(f"[green]✓[/] {version.ref} → image digest {image.digest}")
    console.print(reference)
