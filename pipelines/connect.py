"""Where a command runs: the tracking server and the deployment target of `--target`.

The one place that picks the local or the Azure implementation. Above it are the commands and
the demo; below it the lifecycle, which is handed what this module picks and knows neither
implementation (so the Azure ML steps, in `pipelines.azure`, can share the lifecycle's code).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pipelines.settings import TargetName

if TYPE_CHECKING:
    from pipelines.release.interface import ServingTarget
    from pipelines.settings import Settings
    from pipelines.steps import Tracking


def tracking_for(target: TargetName, model_name: str | None) -> Tracking:
    """The MLflow tracking server of the chosen target."""
    if target is TargetName.azure:
        from pipelines.azure import commands

        return commands.tracking(model_name)
    from pipelines.settings import load_settings
    from pipelines.steps import Tracking

    return Tracking(load_settings(model_name))


def serving_target(target: TargetName, model_name: str | None) -> tuple[Settings, ServingTarget]:
    """Settings and the deployment target for a command."""
    if target is TargetName.azure:
        from pipelines.targets.azure import from_environment

        return from_environment(model_name)
    from pipelines.registry import ModelRegistry
    from pipelines.settings import load_settings
    from pipelines.targets.local import LocalTarget

    settings = load_settings(model_name)
    return settings, LocalTarget(
        settings, ModelRegistry(settings.tracking_uri, settings.model_name)
    )
