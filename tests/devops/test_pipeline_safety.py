"""The pipelines are safe by default: nothing pasted into scripts, long Azure steps keep their
sign-in, pull-request runs never touch the deploying connection or the secrets, the Pulumi CLI
is verified before it runs, the preview lands on the run summary, deployment jobs download
nothing they do not need. Each rule is also fed the broken input it exists to catch."""

from __future__ import annotations

import hashlib
import io
import os
import subprocess
import tarfile
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.devops import pipeline_files as pf

AZURE_CLI = pf.TEMPLATES_DIR / "azure-cli.yml"
MAIN_ONLY = "eq(variables['Build.SourceBranch'], 'refs/heads/main')"


# --- nothing pasted into a script ----------------------------------------------------------


@pytest.mark.parametrize("path", pf.all_files(), ids=lambda p: p.name)
def test_no_template_expression_is_pasted_into_a_script(path: Path) -> None:
    assert pf.pasted_expressions(pf.load(path)) == []


def _tree(text: str) -> Any:
    return yaml.safe_load(text)


def test_a_parameter_pasted_into_a_script_is_caught() -> None:
    # resolve-model.yml as it was: the model parameter pasted into bash with Azure credentials.
    old_resolve = _tree(
        "parameters:\n  - name: model\n    type: string\n"
        'steps:\n  - script: |\n      ref="${{ parameters.model }}"\n      echo "$ref"\n'
    )
    assert pf.pasted_expressions(old_resolve) == ["${{ parameters.model }}"]
    # A whole body made of a parameter that is not a script is pasted code too.
    whole = _tree(
        "parameters:\n  - name: model\n    type: string\n"
        "steps:\n  - task: AzureCLI@2\n    inputs:\n      inlineScript: ${{ parameters.model }}\n"
    )
    assert pf.pasted_expressions(whole) == ["${{ parameters.model }}"]
    # A caller's `script` parameter, an `each` variable: caught where they are written.
    caller = _tree(
        "steps:\n  - template: templates/azure-cli.yml\n    parameters:\n"
        "      script: pulumi stack output --stack ${{ stack }}\n"
    )
    assert pf.pasted_expressions(caller) == ["${{ stack }}"]


def test_a_template_that_takes_a_whole_script_may_run_it() -> None:
    assert pf.WHOLE_SCRIPT.fullmatch(
        pf.load(AZURE_CLI)["steps"][0]["inputs"]["inlineScript"].strip()
    )
    elsewhere = _tree("steps:\n  - script: ${{ parameters.script }}\n")  # declares no `script`
    assert pf.pasted_expressions(elsewhere) == ["${{ parameters.script }}"]


# --- long Azure steps keep their sign-in -----------------------------------------------------


def pulumi_steps_without_session(files: list[Path]) -> list[str]:
    """Steps that run `pulumi` without keepAzSessionActive: an azure-cli.yml call with it off,
    an AzureCLI@2 task without it, or a plain script (no Azure login at all)."""
    defaults = pf.template_defaults(AZURE_CLI)
    found = []
    for path in files:
        tree = pf.load(path)
        for call in pf.template_calls(tree, AZURE_CLI.name):
            keep = call.get("keepAzSessionActive", defaults["keepAzSessionActive"])
            if pf.command_lines(str(call.get("script", "")), "pulumi") and not pf.is_true(keep):
                found.append(f"{path.name}: {call.get('displayName')}")
        call_parameters = {
            id(m["parameters"]) for m in pf.walk(tree) if isinstance(m.get("parameters"), dict)
        }
        for step in pf.walk(tree):
            if id(step) in call_parameters:
                continue
            if step.get("task") == "AzureCLI@2":
                inputs = step.get("inputs") or {}
                script = str(inputs.get("inlineScript", ""))
                if pf.command_lines(script, "pulumi") and not pf.is_true(
                    inputs.get("keepAzSessionActive")
                ):
                    found.append(f"{path.name}: {step.get('displayName')}")
            for key in ("script", "bash"):
                if pf.command_lines(str(step.get(key, "")), "pulumi") and "task" not in step:
                    found.append(f"{path.name}: {step.get('displayName')} (no Azure login)")
    return found


def test_every_pulumi_step_keeps_its_azure_session() -> None:
    assert pulumi_steps_without_session(pf.all_files()) == []
    # There are such steps (preview, up, stack outputs), and the template really sets the input.
    calls = [
        call
        for path in pf.all_files()
        for call in pf.template_calls(pf.load(path), AZURE_CLI.name)
        if pf.command_lines(str(call.get("script", "")), "pulumi")
    ]
    assert len(calls) >= 5
    [task] = pf.load(AZURE_CLI)["steps"]
    assert task["inputs"]["${{ if parameters.keepAzSessionActive }}"] == {
        "keepAzSessionActive": True
    }
    assert pf.is_true(pf.template_defaults(AZURE_CLI)["keepAzSessionActive"])


def test_a_pulumi_step_without_session_is_caught(tmp_path: Path) -> None:
    pipeline = tmp_path / "x.azure-pipelines.yml"
    pipeline.write_text(
        "steps:\n"
        "  - template: templates/azure-cli.yml\n    parameters:\n      displayName: up\n"
        '      keepAzSessionActive: "false"\n      script: pulumi up --stack dev --yes\n'
        "  - task: AzureCLI@2\n    displayName: direct\n    inputs:\n"
        "      inlineScript: pulumi preview --stack qa\n"
        "  - script: pulumi up --stack prod\n    displayName: plain\n"
    )
    assert pulumi_steps_without_session([pipeline]) == [
        "x.azure-pipelines.yml: up",
        "x.azure-pipelines.yml: direct",
        "x.azure-pipelines.yml: plain (no Azure login)",
    ]


# --- pull-request runs never reach production credentials -------------------------------------


def stages(tree: Any) -> list[dict[str, Any]]:
    """Stages, unwrapped from `${{ if }}` blocks."""
    found = []
    for item in tree.get("stages") or []:
        if "stage" in item:
            found.append(item)
        else:
            for value in item.values():
                found += [s for s in value if isinstance(s, dict) and "stage" in s]
    return found


def uses_production_credentials(node: Any) -> bool:
    """Whether anything under `node` names the secrets group or the deploying connection."""
    named_secrets = any(
        isinstance(m.get("variables"), list)
        and any(isinstance(v, dict) and v.get("group") == "mlops-secrets" for v in m["variables"])
        for m in pf.walk(node)
    )
    deploying = any(
        call.get("connection", "deploy") == "deploy"
        for call in pf.template_calls(node, AZURE_CLI.name)
    ) or bool(pf.template_calls(node, "stack-outputs.yml"))
    return named_secrets or deploying


def pr_reachable_credentials(path: Path) -> list[str]:
    """Stages of a pull-request-triggered pipeline that use production credentials without
    being limited to main (plus any pipeline-level use)."""
    tree = pf.load(path)
    found = []
    if any(v.get("group") == "mlops-secrets" for v in tree.get("variables") or []):
        found.append("pipeline variables")
    for stage in stages(tree):
        if uses_production_credentials(stage) and MAIN_ONLY not in str(stage.get("condition")):
            found.append(stage["stage"])
    return found


def test_pull_request_runs_never_name_production_credentials() -> None:
    variables = pf.load(pf.TEMPLATES_DIR / "variables.yml")["variables"]
    assert "mlops-secrets" not in {v.get("group") for v in variables}
    for name in ("build.azure-pipelines.yml", "infra.azure-pipelines.yml"):
        path = pf.PIPELINES_DIR / name
        assert pf.load(path)["pr"] != "none"
        assert pr_reachable_credentials(path) == [], name
    for name in ("retrain.azure-pipelines.yml", "release.azure-pipelines.yml"):
        assert pf.load(pf.PIPELINES_DIR / name)["pr"] == "none"


def test_the_pr_preview_uses_only_the_read_only_connection() -> None:
    tree = pf.load(pf.PIPELINES_DIR / "infra.azure-pipelines.yml")
    [preview] = [s for s in stages(tree) if s["stage"] == "Preview"]
    assert not uses_production_credentials(preview)
    assert {c["stack"] for c in pf.template_calls(preview, "pulumi-preview.yml")} == {
        "dev",
        "qa",
        "prod",
    }
    [call] = pf.template_calls(pf.load(pf.TEMPLATES_DIR / "pulumi-preview.yml"), AZURE_CLI.name)
    assert call["connection"] == "preview"
    # Nothing else uses the preview connection.
    for path in pf.all_files():
        if path.name != "pulumi-preview.yml":
            calls = pf.template_calls(pf.load(path), AZURE_CLI.name)
            assert all(c.get("connection", "deploy") == "deploy" for c in calls), path.name


def test_production_credentials_in_a_pr_stage_are_caught(tmp_path: Path) -> None:
    pipeline = tmp_path / "x.azure-pipelines.yml"
    pipeline.write_text(
        "pr: [main]\nvariables:\n  - group: mlops-secrets\nstages:\n"
        "  - stage: Sneaky\n    jobs:\n      - job: J\n        steps:\n"
        "          - template: templates/azure-cli.yml\n            parameters:\n"
        "              displayName: x\n              script: az account show\n"
        f"  - stage: Fine\n    condition: and(succeeded(), {MAIN_ONLY})\n    jobs:\n"
        "      - job: J\n        variables:\n          - group: mlops-secrets\n"
        "        steps: []\n"
    )
    assert pr_reachable_credentials(pipeline) == ["pipeline variables", "Sneaky"]


# --- the Pulumi CLI is verified before it runs -------------------------------------------------

FAKE_CURL = """#!/usr/bin/env bash
# curl -fsSL --retry 3 -o FILE URL, served from $FAKE_RELEASE; logs the URLs it was asked for.
while [ $# -gt 0 ]; do
  case "$1" in -o) out="$2"; shift 2;; -*) shift;; *) url="$1"; shift;; esac
done
echo "$url" >> "$FAKE_RELEASE/requested"
cp "$FAKE_RELEASE/$(basename "$url")" "$out" 2>/dev/null || exit 22
"""


def _archive(version_printed: str) -> bytes:
    """An archive laid out like Pulumi's: pulumi/pulumi (here a script printing a version)."""
    binary = f"#!/bin/sh\necho {version_printed}\n".encode()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        info = tarfile.TarInfo("pulumi/pulumi")
        info.size, info.mode = len(binary), 0o755
        archive.addfile(info, io.BytesIO(binary))
    return buffer.getvalue()


def _install(
    tmp_path: Path, version: str, release: dict[str, bytes]
) -> subprocess.CompletedProcess[str]:
    served = tmp_path / "release"
    served.mkdir()
    for name, content in release.items():
        (served / name).write_bytes(content)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "curl").write_text(FAKE_CURL)
    (bin_dir / "curl").chmod(0o755)
    [step] = pf.load(pf.TEMPLATES_DIR / "setup-pulumi.yml")["steps"]
    assert step["env"] == {"PULUMI_VERSION": "$(pulumiVersion)"}
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}",
        "PULUMI_VERSION": version,
        "AGENT_TOOLSDIRECTORY": str(tmp_path / "tools"),
        "FAKE_RELEASE": str(served),
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", step["script"]],
        capture_output=True, text=True, check=False, timeout=30, env=env,
    )  # fmt: skip


VERSION = "3.223.0"
ARCHIVE = f"pulumi-v{VERSION}-linux-x64.tar.gz"
CHECKSUMS = f"pulumi-{VERSION}-checksums.txt"


def _checksums(**files: bytes) -> bytes:
    return "".join(f"{hashlib.sha256(c).hexdigest()}  {n}\n" for n, c in files.items()).encode()


def test_the_pulumi_cli_installs_when_its_checksum_matches(tmp_path: Path) -> None:
    archive = _archive(f"v{VERSION}")
    other = b"another platform's archive"
    sums = _checksums(**{f"pulumi-v{VERSION}-darwin-arm64.tar.gz": other, ARCHIVE: archive})
    result = _install(tmp_path, VERSION, {ARCHIVE: archive, CHECKSUMS: sums})
    assert result.returncode == 0, result.stdout + result.stderr
    target = tmp_path / "tools" / "pulumi" / VERSION / "pulumi"
    assert f"##vso[task.prependpath]{target}\n" in result.stdout
    assert hashlib.sha256(archive).hexdigest() in result.stdout
    requested = (tmp_path / "release" / "requested").read_text().split()
    base = f"https://github.com/pulumi/pulumi/releases/download/v{VERSION}"
    assert requested == [f"{base}/{ARCHIVE}", f"{base}/{CHECKSUMS}"]


def test_a_tampered_pulumi_archive_is_not_installed(tmp_path: Path) -> None:
    published = _archive(f"v{VERSION}")
    tampered = _archive(f"v{VERSION}") + b"extra"
    result = _install(
        tmp_path, VERSION, {ARCHIVE: tampered, CHECKSUMS: _checksums(**{ARCHIVE: published})}
    )
    assert result.returncode == 1
    assert f"{ARCHIVE} does not match its published SHA-256; not installed." in result.stdout
    assert not (tmp_path / "tools" / "pulumi").exists()
    assert "prependpath" not in result.stdout


@pytest.mark.parametrize(
    ("listed", "printed", "problem"),
    [
        (False, f"v{VERSION}", f"{CHECKSUMS} lists no {ARCHIVE}"),
        (True, "v3.1.0", f"The archive holds Pulumi v3.1.0, not v{VERSION}."),
    ],
)
def test_an_unlisted_or_wrong_pulumi_archive_fails(
    tmp_path: Path, listed: bool, printed: str, problem: str
) -> None:
    archive = _archive(printed)
    sums = _checksums(**({ARCHIVE: archive} if listed else {"pulumi-other.tar.gz": archive}))
    result = _install(tmp_path, VERSION, {ARCHIVE: archive, CHECKSUMS: sums})
    assert result.returncode == 1
    assert problem in result.stdout
    assert "prependpath" not in result.stdout


def test_a_missing_checksum_file_fails(tmp_path: Path) -> None:
    result = _install(tmp_path, VERSION, {ARCHIVE: _archive(f"v{VERSION}")})
    assert result.returncode == 22  # curl -f: the download failed, set -e stops
    assert not (tmp_path / "tools" / "pulumi").exists()


# --- the preview lands on the run summary ------------------------------------------------------


def _preview(tmp_path: Path, stack: str, exit_code: int) -> subprocess.CompletedProcess[str]:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pulumi").write_text(
        f'#!/usr/bin/env bash\necho "Previewing update ($*)"\necho "  + 3 to create"\n'
        f"echo 'error: something' >&2\nexit {exit_code}\n"
    )
    (bin_dir / "pulumi").chmod(0o755)
    [call] = pf.template_calls(pf.load(pf.TEMPLATES_DIR / "pulumi-preview.yml"), AZURE_CLI.name)
    env = {
        name: str(value)
        .replace("${{ parameters.stack }}", stack)
        .replace("$(Agent.TempDirectory)", str(tmp_path))
        for name, value in call["env"].items()
    }
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", call["script"]],
        capture_output=True, text=True, check=False, timeout=30,
        env={**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", **env},
    )  # fmt: skip


@pytest.mark.parametrize("exit_code", [0, 255])
def test_the_preview_goes_to_the_run_summary(tmp_path: Path, exit_code: int) -> None:
    result = _preview(tmp_path, "qa", exit_code)
    assert result.returncode == exit_code
    summary = tmp_path / "pulumi-preview-qa.md"
    assert f"##vso[task.uploadsummary]{summary}\n" in result.stdout
    text = summary.read_text()
    outcome = "succeeded" if exit_code == 0 else f"failed (exit {exit_code})"
    assert text.startswith(f"## pulumi preview --stack qa: {outcome}\n")
    assert "Previewing update (preview --stack qa --diff --non-interactive --color never)" in text
    assert "  + 3 to create" in text and "error: something" in text  # stderr too


# --- deployment jobs, triggers, test results, the release's pipeline resource -----------------


def deployments_that_download(files: list[Path]) -> list[str]:
    """Deployment jobs whose first step is not `- download: none`."""
    found = []
    for path in files:
        for job in pf.jobs(pf.load(path)):
            if "deployment" in job:
                steps = job["strategy"]["runOnce"]["deploy"]["steps"]
                if steps[0] != {"download": "none"}:
                    found.append(f"{path.name}: {job['deployment']}")
    return found


def test_deployment_jobs_download_nothing() -> None:
    assert deployments_that_download(pf.pipeline_files()) == []
    deployments = [j for p in pf.pipeline_files() for j in pf.jobs(pf.load(p)) if "deployment" in j]
    assert len(deployments) == 5  # QA, Production, pulumi up dev/qa/prod


def test_a_deployment_that_downloads_everything_is_caught(tmp_path: Path) -> None:
    pipeline = tmp_path / "x.azure-pipelines.yml"
    pipeline.write_text(
        "jobs:\n  - deployment: D\n    environment: qa\n    strategy:\n      runOnce:\n"
        "        deploy:\n          steps:\n            - checkout: self\n"
    )
    assert deployments_that_download([pipeline]) == ["x.azure-pipelines.yml: D"]


def test_the_infra_pipeline_does_not_batch_and_publishes_its_tests() -> None:
    tree = pf.load(pf.PIPELINES_DIR / "infra.azure-pipelines.yml")
    assert "batch" not in tree["trigger"]
    assert tree["lockBehavior"] == "sequential"
    [offline] = [s for s in stages(tree) if s["stage"] == "Offline"]
    steps = offline["jobs"][0]["steps"]
    [tests] = [s for s in steps if str(s.get("script", "")).startswith("pytest ")]
    junit = tests["script"].split("--junitxml=")[1].split()[0]
    [publish] = [s for s in steps if s.get("task") == "PublishTestResults@2"]
    assert publish["inputs"]["testResultsFiles"] == junit
    assert publish["condition"] == "succeededOrFailed()"
    assert steps.index(publish) == steps.index(tests) + 1


def test_a_manual_release_takes_a_registered_model_from_main() -> None:
    release = pf.load(pf.PIPELINES_DIR / "release.azure-pipelines.yml")
    [resource] = release["resources"]["pipelines"]
    assert resource["branch"] == "main"
    assert resource["tags"] == ["model-registered"] == resource["trigger"]["tags"]
    assert resource["trigger"]["branches"]["include"] == ["main"]
    [parameter] = release["parameters"]
    assert parameter["default"] == "from-retrain"  # a sentinel, not an empty string
    [condition] = list(pf.load(pf.TEMPLATES_DIR / "resolve-model.yml")["steps"][0])
    assert condition == "${{ if eq(parameters.model, 'from-retrain') }}"


def test_network_steps_retry() -> None:
    setup = pf.load(pf.TEMPLATES_DIR / "setup-python.yml")["steps"]
    retried = {s["displayName"] for s in setup if "retryCountOnTaskFailure" in s}
    assert retried == {"uv $(uvVersion)", "Ops environment (uv.lock)"}
    [install] = pf.load(pf.TEMPLATES_DIR / "setup-pulumi.yml")["steps"]
    assert int(install["retryCountOnTaskFailure"]) >= 1
    [outputs] = pf.template_calls(pf.load(pf.TEMPLATES_DIR / "stack-outputs.yml"), AZURE_CLI.name)
    assert pf.is_true(outputs["retry"])
    [task] = pf.load(AZURE_CLI)["steps"]
    assert task["${{ if parameters.retry }}"] == {"retryCountOnTaskFailure": 2}
    # Never a retry of something that changes Azure.
    for path in pf.all_files():
        for call in pf.template_calls(pf.load(path), AZURE_CLI.name):
            if pf.is_true(call.get("retry")):
                assert not any(
                    word in str(call["script"]) for word in ("pulumi up", "mlops release")
                ), path.name
