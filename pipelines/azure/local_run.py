"""`mlops pipeline run --local`: the Azure ML training pipeline, run here as Azure ML runs it.

The same `PipelineJob` that `mlops pipeline run` submits is taken apart node by node, in
dependency order, and each node is run the way a cluster runs it:

- **code**: the component's `code` folder, enumerated by azure-ai-ml's own upload logic
  (`Component._build_code()` and its `ComponentIgnoreFile`, which honours `.amlignore`, else
  `.gitignore`, and always drops `__pycache__`; `_utils/_asset_utils.get_upload_files_from_folder`)
  and copied to `<node>/exe/wd`, the job's working directory;
- **environment**: a virtual environment built from the component's Azure ML environment
  (its conda file's Python and pip pins, each with its hashes, from the environment's lock:
  pipelines.locks), installed with --require-hashes and cached under the state directory by the
  hash of that definition, so a rerun with the same pins reuses it;
- **inputs and outputs**: folders laid out as Azure ML mounts them, `<node>/cap/data-capability/
  wd/INPUT_<name>` for inputs and `.../wd/<name>` for outputs (the paths jobs see on a cluster,
  e.g. azure-sdk-for-python issues 36689 and 31734); an input bound to an upstream output is
  that output's folder;
- **command**: the component's template with `${{inputs.x}}`/`${{outputs.x}}` replaced and each
  `$[[...]]` optional block dropped when an input in it is unset (Learn, "how-to-use-pipeline-
  component"/"reference-yaml-component-command", optional inputs), run by bash from the snapshot
  with the environment's interpreter first on PATH and nothing of the checkout on sys.path;
- **tracking**: Azure ML configures MLflow's tracking URI in every job (Learn, "how-to-use-mlflow-
  configure-tracking"); here it is a local `mlflow server` over the project's SQLite store, so the
  steps talk to it over HTTP with the environment's own MLflow client, as on Azure. Each node gets
  its own run in the pipeline's experiment, handed over in MLFLOW_RUN_ID, which MLflow's
  `start_run` then resumes: Azure ML creates a job's run and injects MLFLOW_RUN_ID (reported in
  verl-project/verl pull request 4740; not stated on a Learn page found here).

Not reproduced: the environment's base image (system libraries), the cluster's identity (the
steps use the tracking server's own registry: no shared-registry inputs are bound), and data
assets (`--data` must be a local file).
"""

from __future__ import annotations

import graphlib
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipelines.azure.snapshot import tree_digest
from pipelines.errors import MlopsError
from pipelines.settings import Settings

if TYPE_CHECKING:
    from azure.ai.ml.entities import CommandComponent, Environment, PipelineJob

WORKING_DIR = Path("exe") / "wd"
MOUNT_DIR = Path("cap") / "data-capability" / "wd"
ENVS_DIR = "pipeline-envs"
RUNS_DIR = "pipeline-runs"
SERVER_START_TIMEOUT_S = 120.0

_BINDING = re.compile(
    r"^\$\{\{parent\.(?:inputs\.(?P<input>\w+)|jobs\.(?P<job>\w+)\.outputs\.(?P<output>\w+))\}\}$"
)
_PLACEHOLDER = re.compile(r"\$\{\{\s*(?P<kind>inputs|outputs)\.(?P<name>\w+)\s*\}\}")
_OPTIONAL = re.compile(r"\$\[\[(?P<body>.*?)\]\]", re.DOTALL)

Progress = Callable[[str], None]


# -- the pipeline's graph ---------------------------------------------------------------------


@dataclass(frozen=True)
class Upstream:
    """An input bound to another node's output."""

    job: str
    output: str


@dataclass(frozen=True)
class Node:
    """One step: its component, its input bindings and its environment variables."""

    name: str
    component: CommandComponent
    inputs: dict[str, object]  # literal value, Upstream, or None (unset optional input)
    outputs: tuple[str, ...]
    environment_variables: dict[str, str]

    @property
    def upstream(self) -> set[str]:
        return {value.job for value in self.inputs.values() if isinstance(value, Upstream)}


def _binding(value: object, pipeline_inputs: Mapping[str, object]) -> object:
    """A node input as the serialized job states it, resolved against the pipeline's inputs."""
    path = value.get("path") if isinstance(value, dict) else value
    match = _BINDING.match(path) if isinstance(path, str) else None
    if match is None:
        return path if isinstance(value, dict) else value
    if match["input"]:
        bound = pipeline_inputs.get(match["input"])
        return bound.get("path") if isinstance(bound, dict) else bound
    return Upstream(match["job"], match["output"])


def pipeline_nodes(job: PipelineJob) -> list[Node]:
    """The job's nodes in an order that runs every node after the nodes it reads from."""
    serialized = job._to_dict()
    pipeline_inputs = serialized.get("inputs") or {}
    nodes = {}
    for name, node in job.jobs.items():
        spec = serialized["jobs"][name]
        declared = node.component.inputs
        inputs = {
            key: _binding(spec.get("inputs", {}).get(key), pipeline_inputs) for key in declared
        }
        nodes[name] = Node(
            name=name,
            component=node.component,
            inputs=inputs,
            outputs=tuple(node.component.outputs),
            environment_variables=dict(node.environment_variables or {}),
        )
    order = graphlib.TopologicalSorter({n.name: n.upstream for n in nodes.values()})
    try:
        return [nodes[name] for name in order.static_order()]
    except graphlib.CycleError as error:
        raise MlopsError(
            f"the pipeline's steps read from each other in a cycle: {error}"
        ) from error


# -- the command --------------------------------------------------------------------------------


def render_command(
    template: str, inputs: Mapping[str, str | None], outputs: Mapping[str, str]
) -> str:
    """The command Azure ML runs: optional blocks resolved, placeholders bound and quoted."""

    def value(kind: str, name: str) -> str | None:
        table: Mapping[str, str | None] = inputs if kind == "inputs" else outputs
        if name not in table:
            raise MlopsError(
                f"the command names {kind}.{name}, which the component does not declare"
            )
        return table[name]

    def optional(match: re.Match[str]) -> str:
        body = match["body"]
        names = [(m["kind"], m["name"]) for m in _PLACEHOLDER.finditer(body)]
        return body if all(value(k, n) is not None for k, n in names) else ""

    def bind(match: re.Match[str]) -> str:
        bound = value(match["kind"], match["name"])
        if bound is None:
            raise MlopsError(
                f"input {match['name']} is required by the command but the pipeline leaves it unset"
            )
        return shlex.quote(bound)

    return _PLACEHOLDER.sub(bind, _OPTIONAL.sub(optional, template))


def _as_text(value: object) -> str | None:
    return None if value is None else str(value)


# -- code snapshot -----------------------------------------------------------------------------


def snapshot_files(component: CommandComponent) -> list[tuple[Path, str]]:
    """(source, relative path) of every file azure-ai-ml would upload as the component's code."""
    from azure.ai.ml._utils._asset_utils import get_ignore_file, get_upload_files_from_folder

    with component._build_code() as code:
        if code is None:
            raise MlopsError(f"component {component.name} has no local code folder to run")
        root = Path(code.path)
        if not root.is_absolute():
            root = Path(code.base_path) / root
        ignore = getattr(code, "_ignore_file", None) or get_ignore_file(root)
        # Annotated as List[str]; the function returns (local path, upload path) pairs.
        files: list[Any] = get_upload_files_from_folder(root, ignore_file=ignore)
    return [(Path(source), Path(relative).as_posix()) for source, relative in files]


def write_snapshot(component: CommandComponent, dest: Path) -> Path:
    """Copy the component's code snapshot into `dest` (replaced)."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    for source, relative in snapshot_files(component):
        target = dest / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source, target)
    return dest


# -- environments ------------------------------------------------------------------------------


def conda_python_and_pins(environment: Environment) -> tuple[str, list[str]]:
    """The Python version and pip requirement lines of an environment's conda file."""
    spec = environment.conda_file
    if isinstance(spec, str):
        import yaml

        spec = yaml.safe_load(spec)
    if not isinstance(spec, dict):
        raise MlopsError(f"environment {environment.name} has no conda file to build from")
    python: str | None = None
    pins: list[str] = []
    for dependency in spec.get("dependencies", []):
        if isinstance(dependency, str) and dependency.startswith("python="):
            python = dependency.split("=", 1)[1]
        elif isinstance(dependency, dict):
            pins.extend(str(line) for line in dependency.get("pip", []))
    if python is None or not pins:
        raise MlopsError(
            f"environment {environment.name} names no Python version or no pip packages"
        )
    return python, pins


def environment_fingerprint(environment: Environment) -> str:
    """What the cached venv was built from: the conda file's Python and pins."""
    python, pins = conda_python_and_pins(environment)
    return hashlib.sha256(json.dumps([python, pins]).encode()).hexdigest()


def environments_root(settings: Settings) -> Path:
    """Where the cached venvs live: MLOPS_PIPELINE_ENVS, else `<state dir>/pipeline-envs`.

    The test suite points it at one folder for every session, so a rerun builds nothing.
    """
    return Path(os.environ.get("MLOPS_PIPELINE_ENVS") or settings.state_dir / ENVS_DIR)


def check_hashed(environment: Environment, pins: list[str]) -> None:
    """Every pip line carries a --hash: the environment is installed exactly as it was locked."""
    unhashed = [pin.split()[0] for pin in pins if "--hash=" not in pin]
    if unhashed:
        raise MlopsError(
            f"environment {environment.name} installs {', '.join(unhashed[:3])} without a hash; "
            "build its conda file from a lock (pipelines.locks) and run `make locks`"
        )


def ensure_environment(environment: Environment, root: Path) -> Path:
    """A venv with the environment's pins, cached by their hash under `root`; its interpreter.

    Installed with --require-hashes, as pip installs the conda file's hashed lines on Azure ML.
    """
    from pipelines.scoring_env import build_venv, env_lock, stamp_matches, venv_python

    fingerprint = environment_fingerprint(environment)
    venv = root / fingerprint[:16]
    with env_lock(root / f"{fingerprint[:16]}.lock"):
        if not stamp_matches(venv, fingerprint):
            python, pins = conda_python_and_pins(environment)
            check_hashed(environment, pins)
            requirements = venv.parent / f"{fingerprint[:16]}.txt"
            requirements.write_text("\n".join(pins) + "\n")
            build_venv(
                venv,
                python,
                ["--require-hashes", "-r", str(requirements)],
                fingerprint,
                what=f"environment {environment.name}:{environment.version}",
            )
    return venv_python(venv)


def resolve_environment(
    component: CommandComponent, known: Mapping[str, Environment]
) -> Environment:
    """The component's environment: inline, or a reference to one the project defines."""
    from azure.ai.ml.entities import Environment

    reference = component.environment
    if isinstance(reference, Environment):
        return reference
    if str(reference) in known:
        return known[str(reference)]
    raise MlopsError(
        f"component {component.name} uses environment {reference}, which this project does not "
        "define; run it on Azure ML instead"
    )


# -- tracking ----------------------------------------------------------------------------------


@contextmanager
def tracking_server(settings: Settings, log_file: Path) -> Iterator[str]:
    """A local MLflow server over the project's SQLite store; yields its URL and stops it."""
    from pipelines.scoring_env import LOOPBACK, free_port

    port = free_port()
    url = f"http://{LOOPBACK}:{port}"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "mlflow", "server",
        "--backend-store-uri", settings.tracking_uri,
        "--default-artifact-root", settings.artifact_root.as_uri(),
        "--no-serve-artifacts",
        "--host", LOOPBACK,
        "--port", str(port),
        "--workers", "1",
    ]  # fmt: skip
    with log_file.open("wb") as log:
        server = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        _wait_healthy(url, server, log_file)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def _wait_healthy(url: str, server: subprocess.Popen[bytes], log_file: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise MlopsError(
                f"the local MLflow server exited (code {server.returncode}); see {log_file}"
            )
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise MlopsError(f"the local MLflow server did not answer within 120 s; see {log_file}")


# -- running -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class NodeResult:
    """Where a node ran and what it wrote."""

    name: str
    outputs: dict[str, Path]
    log_file: Path


def _mounts(
    node: Node, node_dir: Path, done: Mapping[str, NodeResult]
) -> tuple[dict[str, str | None], dict[str, Path]]:
    mounts = node_dir / MOUNT_DIR
    inputs: dict[str, str | None] = {}
    for key, value in node.inputs.items():
        if isinstance(value, Upstream):
            source = done[value.job].outputs[value.output]
            link = mounts / f"INPUT_{key}"
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(source, target_is_directory=True)
            inputs[key] = str(link)
        elif isinstance(value, str) and Path(value).is_file():
            link = mounts / f"INPUT_{key}" / Path(value).name
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(Path(value).resolve())
            inputs[key] = str(link)
        else:
            inputs[key] = _as_text(value)
    outputs = {name: mounts / name for name in node.outputs}
    for folder in outputs.values():
        folder.mkdir(parents=True, exist_ok=True)
    return inputs, outputs


def entry_module(command: str) -> str | None:
    """`pkg.mod` of a command that starts `python -m pkg.mod`, else None."""
    words = shlex.split(command.split("$[[", 1)[0])
    if len(words) >= 3 and words[0].startswith("python") and words[1] == "-m":
        return words[2]
    return None


def check_imports(node: Node, python: Path, workdir: Path) -> None:
    """Every module the entry point can reach imports from the snapshot alone, in the env.

    A step only imports some modules on some paths (the shared registry's client only when a
    registry is named): importing them all up front catches what a branch would hit on Azure.
    """
    from pipelines.azure.snapshot import import_failures, reachable_modules
    from pipelines.settings import PROJECT_ROOT

    entry = entry_module(str(node.component.command))
    if entry is None:
        return
    failures = import_failures(python, workdir, reachable_modules(workdir, entry), [PROJECT_ROOT])
    if failures:
        module, error = next(iter(sorted(failures.items())))
        raise MlopsError(
            f"step {node.name} cannot import {module} from its code snapshot ({error}); on Azure "
            f"ML it would fail the same way: keep what {entry} imports inside "
            "the component's code folder, or type-only imports under TYPE_CHECKING"
        )


def run_node(
    node: Node,
    python: Path,
    node_dir: Path,
    done: Mapping[str, NodeResult],
    environment: Mapping[str, str],
    checked: set[tuple[str, Path]] | None = None,
) -> NodeResult:
    """Run one node from its snapshot in its environment; MlopsError if it fails.

    `checked` remembers (snapshot digest, interpreter) pairs whose imports were already
    checked: the steps of one pipeline share their code and environment.
    """
    workdir = write_snapshot(node.component, node_dir / WORKING_DIR)
    key = (tree_digest(workdir), python)
    if checked is None or key not in checked:
        check_imports(node, python, workdir)
        if checked is not None:
            checked.add(key)
    inputs, outputs = _mounts(node, node_dir, done)
    command = render_command(
        str(node.component.command), inputs, {k: str(v) for k, v in outputs.items()}
    )
    log_file = node_dir / "user_logs" / "std_log.txt"
    log_file.parent.mkdir(parents=True, exist_ok=True)
    env = {
        "PATH": f"{python.parent}{os.pathsep}/usr/bin{os.pathsep}/bin",
        "HOME": os.environ.get("HOME", str(node_dir)),
        "LANG": "C.UTF-8",
        **node.environment_variables,
        **environment,
    }
    with log_file.open("w") as log:
        log.write(f"$ {command}\n")
        log.flush()
        status = subprocess.run(
            ["/bin/bash", "-c", command],
            cwd=workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            check=False,
        ).returncode
    if status != 0:
        tail = log_file.read_text(errors="replace").strip().splitlines()[-1:]
        raise MlopsError(
            f"step {node.name} failed (exit code {status}): {tail[0] if tail else 'no output'}; "
            f"its log is {log_file}"
        )
    return NodeResult(node.name, outputs, log_file)


def run_pipeline_locally(
    job: PipelineJob,
    environments: Mapping[str, Environment],
    settings: Settings,
    progress: Progress = lambda _: None,
) -> dict[str, NodeResult]:
    """Run every node of `job` as Azure ML would; returns each node's result by name."""
    from pipelines.steps import Tracking

    nodes = pipeline_nodes(job)
    run_dir = settings.state_dir / RUNS_DIR / time.strftime("%Y%m%d-%H%M%S")
    tracking = Tracking(settings)  # the SQLite store: creates the experiment with local artifacts
    experiment_id = tracking.experiment_id()
    pythons = {}
    for node in nodes:
        environment = resolve_environment(node.component, environments)
        pythons[node.name] = ensure_environment(environment, environments_root(settings))
    done: dict[str, NodeResult] = {}
    checked: set[tuple[str, Path]] = set()
    with tracking_server(settings, run_dir / "mlflow-server.log") as url:
        for node in nodes:
            run = tracking.client.create_run(
                experiment_id, run_name=node.name, tags={"mlops.pipeline_step": node.name}
            )
            progress(f"{node.name}: {node.component.display_name or node.component.name}")
            try:
                done[node.name] = run_node(
                    node,
                    pythons[node.name],
                    run_dir / node.name,
                    done,
                    {"MLFLOW_TRACKING_URI": url, "MLFLOW_RUN_ID": run.info.run_id},
                    checked,
                )
            except MlopsError:
                tracking.client.set_terminated(run.info.run_id, "FAILED")
                raise
            if tracking.client.get_run(run.info.run_id).info.status == "RUNNING":
                tracking.client.set_terminated(run.info.run_id, "FINISHED")
    return done


def known_environments() -> dict[str, Environment]:
    """The environments this project defines, by the reference components use."""
    from pipelines.azure.entities import training_environment
    from pipelines.azure.pipeline_job import environment_reference

    environment = training_environment()
    return {environment_reference(environment): environment}
