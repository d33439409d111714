"""Batch scoring on Azure ML: the batch driver deployed on the batch endpoint, jobs on data assets.

`mlops batch-score --target azure --input DIR --output FILE` registers DIR as a `uri_folder`
data asset, makes sure the batch endpoint's default deployment serves the production model
(`ridge-v<version>`, created on first use), submits the job, streams its log, downloads
the parts the driver wrote (one Parquet file per input file, `output_action: summary_only`) and
merges them into FILE, CSV or Parquet by its suffix, exactly as a local run writes it. Jobs run
on the stack's training cluster, which scales to zero.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from collections.abc import Callable
from pathlib import Path

from infra.outputs import StackOutputs
from pipelines.azure.client import AzureClients, azure_call
from pipelines.errors import MlopsError
from pipelines.registry import RegisteredVersion
from pipelines.settings import PROJECT_ROOT
from training.spec import current_spec

OUTPUT_NAME = "score"
BATCH_DRIVER = PROJECT_ROOT / "scoring" / "batch_driver.py"

Progress = Callable[[str], None]


def ensure_deployment(
    clients: AzureClients,
    outputs: StackOutputs,
    version: RegisteredVersion,
    progress: Progress,
) -> str:
    """The batch deployment of this version, created if missing and made the default."""
    from azure.core.exceptions import ResourceNotFoundError

    from pipelines.azure.entities import (
        SCORING_PACKAGES,
        BatchSettings,
        batch_deployment,
        batch_deployment_name,
        batch_environment,
        code_snapshot,
        with_default_deployment,
    )

    ml = clients.workspace(outputs)
    endpoint_name = outputs.batch_endpoint_name
    name = batch_deployment_name(version)
    try:
        ml.batch_deployments.get(name=name, endpoint_name=endpoint_name)
    except ResourceNotFoundError:
        if not BATCH_DRIVER.is_file():
            raise MlopsError(
                "scoring/batch_driver.py is missing; the batch driver cannot be deployed"
            ) from None
        progress(f"batch deployment {endpoint_name}/{name} for {version.ref}")
        with tempfile.TemporaryDirectory() as scratch:
            built = batch_deployment(
                outputs,
                version,
                code_snapshot(Path(scratch) / "code", SCORING_PACKAGES),
                batch_environment(),
                BatchSettings(),
            )
            azure_call(
                f"batch deployment {name}",
                lambda: ml.batch_deployments.begin_create_or_update(built).result(),
            )
    endpoint = azure_call(
        f"reading batch endpoint {endpoint_name}", lambda: ml.batch_endpoints.get(endpoint_name)
    )
    defaults = endpoint.defaults
    current = (
        defaults.get("deployment_name")
        if isinstance(defaults, dict)
        else getattr(defaults, "deployment_name", None)
    )
    if current != name:
        progress(f"{endpoint_name} now defaults to {name}")
        updated = with_default_deployment(endpoint, name)
        azure_call(
            f"updating batch endpoint {endpoint_name}",
            lambda: ml.batch_endpoints.begin_create_or_update(updated).result(),
        )
    return name


def register_input(clients: AzureClients, outputs: StackOutputs, folder: Path) -> str:
    """Upload the folder as a new version of the input data asset; returns `azureml:name:ver`."""
    from azure.ai.ml.constants import AssetTypes
    from azure.ai.ml.entities import Data

    version = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S")
    asset = Data(
        name=current_spec().asset_name("batch-input"),
        version=version,
        type=AssetTypes.URI_FOLDER,
        path=str(folder),
        description="Rows to score with `mlops batch-score --target azure`.",
    )
    ml = clients.workspace(outputs)
    created = azure_call("uploading the batch input", lambda: ml.data.create_or_update(asset))
    return f"azureml:{created.name}:{created.version}"


def score(
    clients: AzureClients,
    outputs: StackOutputs,
    version: RegisteredVersion,
    input_dir: Path,
    output: Path,
    progress: Progress,
) -> int:
    """Run one batch job over the folder and write its predictions to `output`; returns rows."""
    from azure.ai.ml import Input
    from azure.ai.ml.constants import AssetTypes

    deployment = ensure_deployment(clients, outputs, version, progress)
    data = register_input(clients, outputs, input_dir)
    progress(f"input {data}")
    ml = clients.workspace(outputs)
    job = azure_call(
        "submitting the batch job",
        lambda: ml.batch_endpoints.invoke(
            endpoint_name=outputs.batch_endpoint_name,
            deployment_name=deployment,
            inputs={"input": Input(type=AssetTypes.URI_FOLDER, path=data)},
        ),
    )
    progress(f"job {job.name} submitted; streaming its log")
    azure_call(f"batch job {job.name}", lambda: ml.jobs.stream(job.name))
    status = azure_call(f"reading job {job.name}", lambda: ml.jobs.get(job.name)).status
    if status != "Completed":
        raise MlopsError(f"batch job {job.name} ended {status}; its log is in Azure ML studio")
    with tempfile.TemporaryDirectory() as scratch:
        azure_call(
            f"downloading the output of {job.name}",
            lambda: ml.jobs.download(name=job.name, download_path=scratch, output_name=OUTPUT_NAME),
        )
        return merge_output(Path(scratch), input_dir, output, job.name)


def merge_output(downloaded: Path, input_dir: Path, output: Path, job_name: str) -> int:
    """Write the job's per-file parts to `output` (CSV or Parquet), as a local run writes it.

    The driver writes one part per input file and Azure ML adds its summary file (Learn,
    "Customize outputs in batch deployments": the `score` output holds the files the driver
    wrote plus the `output_file_name` summary). A part per input file must be there: with
    `error_threshold: -1` a rejected file fails only its mini-batch, and a predictions file
    silently missing rows would be worse than none. Nothing is written unless all are there.
    """
    from scoring.batch_driver import PART_SUFFIX, input_files, merge_parts
    from scoring.schema import InputError

    parts = list(downloaded.rglob(f"*{PART_SUFFIX}"))
    inputs = input_files(input_dir)
    if len(parts) != len(inputs):
        raise MlopsError(
            f"batch job {job_name} scored {len(parts)} of {len(inputs)} input files; the job log "
            "in Azure ML studio names the rejected files"
        )
    try:
        summary = merge_parts(downloaded, output)
    except InputError as error:
        raise MlopsError(
            f"the output of batch job {job_name} is unreadable: {error.message}"
        ) from error
    return summary.rows
