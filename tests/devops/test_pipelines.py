"""The pipeline files: schema, checkov, template references, variables, hygiene, and agreement
with the Azure DevOps stack that creates what they use."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.devops import program
from infra.devops.settings import read_stack_config
from infra.tooling.devops_recording import RecordedDevops
from pipelines.gate import GateDecision
from pipelines.gate_summary import gate_record, json_sibling, write_gate_summary
from tests.devops import pipeline_files as pf

pipeline_names = {p.name for p in pf.pipeline_files()}
VARIABLE_GROUP = "azuredevops:index/variableGroup:VariableGroup"


def check_jsonschema(*paths: Path) -> subprocess.CompletedProcess[str]:
    executable = Path(sys.executable).parent / "check-jsonschema"
    return subprocess.run(
        [
            str(executable), "--builtin-schema", "vendor.azure-pipelines",
            "--data-transform", "azure-pipelines", "--regex-variant", "python",
            *map(str, paths),
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def group_variables(devops: RecordedDevops) -> set[str]:
    return {
        variable["name"]
        for group in devops.of_type(VARIABLE_GROUP)
        for variable in group.inputs["variables"]
    }


def test_the_four_pipelines_exist() -> None:
    assert pipeline_names == {
        "build.azure-pipelines.yml",
        "retrain.azure-pipelines.yml",
        "release.azure-pipelines.yml",
        "infra.azure-pipelines.yml",
    }


def test_pipelines_and_step_templates_match_the_schema() -> None:
    # Variable templates (variables: only) are no pipeline in the schema's eyes.
    steps = [p for p in pf.template_files() if "steps" in pf.load(p)]
    result = check_jsonschema(*pf.pipeline_files(), *steps)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_schema_check_catches_a_broken_pipeline(tmp_path: Path) -> None:
    broken = tmp_path / "broken.azure-pipelines.yml"
    tree = pf.load(pf.PIPELINES_DIR / "retrain.azure-pipelines.yml")
    tree["jobs"][0]["stepz"] = tree["jobs"][0].pop("steps")
    broken.write_text(yaml.safe_dump(tree))
    assert check_jsonschema(broken).returncode == 1


def test_checkov_passes_every_pipeline(checkov_report: dict[str, Any]) -> None:
    results = checkov_report["results"]
    assert results["failed_checks"] == []
    scanned = {Path(c["file_path"]).name for c in results["passed_checks"]}
    assert scanned == pipeline_names
    assert checkov_report["summary"]["passed"] >= len(pipeline_names)


@pytest.mark.parametrize("path", pf.all_files(), ids=lambda p: p.name)
def test_template_references_resolve(path: Path) -> None:
    for ref, target in pf.template_references(path, pf.load(path)):
        assert target.is_file(), f"{path.name}: template {ref} does not exist"


def test_a_missing_template_is_detected(tmp_path: Path) -> None:
    pipeline = tmp_path / "x.azure-pipelines.yml"
    pipeline.write_text("steps:\n  - template: templates/nowhere.yml\n")
    [(ref, target)] = pf.template_references(pipeline, pf.load(pipeline))
    assert ref == "templates/nowhere.yml" and not target.exists()


def test_every_variable_is_defined(devops: RecordedDevops) -> None:
    secrets = set(devops.settings.key_vault.secrets)
    assert pf.undefined_macros(pf.all_files(), group_variables(devops) | secrets) == {}


def test_an_undefined_variable_is_detected(tmp_path: Path, devops: RecordedDevops) -> None:
    pipeline = tmp_path / "x.azure-pipelines.yml"
    pipeline.write_text(
        "variables:\n  known: 1\nsteps:\n"
        "  - script: echo $(known) $(Build.SourceBranch) $(pulumiStateAccount) $(typo)\n"
    )
    missing = pf.undefined_macros([pipeline], group_variables(devops))
    assert missing == {pipeline.name: {"typo"}}


def test_the_variable_groups_are_the_ones_the_stack_creates(devops: RecordedDevops) -> None:
    used = set().union(*(pf.variable_groups(pf.load(p)) for p in pf.all_files()))
    created = {group.inputs["name"] for group in devops.of_type(VARIABLE_GROUP)}
    assert used == created == {program.SECRETS_GROUP, program.SETTINGS_GROUP}


def test_no_continue_on_error_and_every_job_has_a_timeout() -> None:
    for path in pf.all_files():
        tree = pf.load(path)
        assert not any("continueOnError" in m for m in pf.walk(tree)), path.name
        for job in pf.jobs(tree):
            assert int(job["timeoutInMinutes"]) > 0, f"{path.name}: {job}"


def test_no_secret_in_yaml() -> None:
    forbidden = re.compile(
        r"(AZURE_STORAGE_KEY|AZURE_STORAGE_SAS_TOKEN|AZURE_CLIENT_SECRET|ARM_CLIENT_SECRET"
        r"|AccountKey=|sig=|password:|serviceprincipalkey)",
        re.IGNORECASE,
    )
    for path in pf.all_files():
        assert not forbidden.search(path.read_text()), path.name
    # Secrets reach a step only through an explicit env mapping of the Key Vault group's names,
    # and only with the deploying connection.
    env = pf.load(pf.TEMPLATES_DIR / "azure-cli.yml")["steps"][0]["env"]
    assert env["${{ if eq(parameters.connection, 'deploy') }}"] == {
        "PULUMI_CONFIG_PASSPHRASE": "$(pulumi-config-passphrase)"
    }
    assert "PULUMI_CONFIG_PASSPHRASE" not in env


def test_tool_versions_are_pinned() -> None:
    variables = {
        v["name"]: v["value"]
        for v in pf.load(pf.TEMPLATES_DIR / "variables.yml")["variables"]
        if "name" in v
    }
    lock = (pf.ROOT / "uv.lock").read_text()
    pulumi = re.search(r'name = "pulumi"\nversion = "([^"]+)"', lock)
    assert pulumi is not None
    assert variables["pulumiVersion"] == pulumi.group(1)
    assert re.fullmatch(r"\d+\.\d+\.\d+", variables["uvVersion"])
    assert variables["pythonVersion"] == "3.11"
    [install] = pf.load(pf.TEMPLATES_DIR / "setup-pulumi.yml")["steps"]
    assert install["env"] == {"PULUMI_VERSION": "$(pulumiVersion)"}
    assert "sha256sum --check" in install["script"]
    assert not re.search(r"\|\s*(sh|bash)\b", install["script"])  # no curl | sh
    assert '"uv==$(uvVersion)"' in (pf.TEMPLATES_DIR / "setup-python.yml").read_text()
    for path in pf.pipeline_files():
        assert pf.load(path)["pool"]["vmImage"] != "ubuntu-latest"


def test_azure_steps_use_the_stacks_service_connection() -> None:
    stack = read_stack_config()
    variables = pf.load(pf.TEMPLATES_DIR / "variables.yml")["variables"]
    [name] = [v["value"] for v in variables if v.get("name") == "azureServiceConnection"]
    assert name == stack["mlops-devops:serviceConnection"]["name"]
    [preview] = [v["value"] for v in variables if v.get("name") == "azurePreviewServiceConnection"]
    assert preview == stack["mlops-devops:previewConnection"]["name"]
    task = pf.load(pf.TEMPLATES_DIR / "azure-cli.yml")["steps"][0]
    assert task["task"] == "AzureCLI@2"
    assert task["inputs"]["${{ if eq(parameters.connection, 'preview') }}"] == {
        "azureSubscription": "${{ variables.azurePreviewServiceConnection }}"
    }
    assert task["inputs"]["${{ else }}"] == {
        "azureSubscription": "${{ variables.azureServiceConnection }}"
    }


def test_environments_exist_and_production_is_locked(devops: RecordedDevops) -> None:
    used = set().union(*(pf.environments(pf.load(p)) for p in pf.pipeline_files()))
    configured = {e.name for e in devops.settings.environments}
    assert used == configured
    for name in ("prod", "infra-prod"):
        checks = devops.settings.environment(name)
        assert checks.approval and checks.branch_control and checks.exclusive_lock
    for path in ("release.azure-pipelines.yml", "infra.azure-pipelines.yml"):
        assert pf.load(pf.PIPELINES_DIR / path)["lockBehavior"] == "sequential"


def test_pipeline_definitions_point_at_these_files() -> None:
    for yml_path in program.PIPELINES.values():
        assert (pf.ROOT / yml_path).is_file()
    release = pf.load(pf.PIPELINES_DIR / "release.azure-pipelines.yml")
    [retrain] = release["resources"]["pipelines"]
    assert retrain["source"] in program.PIPELINES
    assert program.PIPELINES[retrain["source"]].endswith("retrain.azure-pipelines.yml")
    assert retrain["trigger"]["tags"] == ["model-registered"]


def _decision(passed: bool) -> GateDecision:
    return GateDecision(
        passed=passed,
        metric="rmse",
        candidate_score=53.1,
        reference_score=54.0,
        reference_kind="production",
        reference_version="3",
        improvement=0.9 if passed else -0.9,
        min_improvement=0.0,
        reason="the candidate is better" if passed else "the candidate is worse",
    )


PARAMETER = re.compile(r"\$\{\{\s*parameters\.(\w+)\s*\}\}")


def _render(text: str, parameters: dict[str, str], variables: dict[str, str]) -> str:
    """What the agent would run: template parameters, then `$(variable)` macros, expanded."""
    text = PARAMETER.sub(lambda m: parameters[m.group(1)], text)
    while (expanded := pf.MACRO.sub(lambda m: variables.get(m.group(1), m.group(0)), text)) != text:
        text = expanded
    unknown = {name for name in pf.MACRO.findall(text) if name not in variables}
    assert not unknown, f"the simulated agent does not know {unknown}"
    return text


def _run_step(
    script: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A `script:` step as the hosted agent runs it: bash, python3 on the PATH (no jq), in the
    checkout (the repository root), with the step's `env:`."""
    path = f"{os.environ.get('PATH', '')}{os.pathsep}{Path(sys.executable).parent}"
    return subprocess.run(
        ["bash", "--noprofile", "--norc", "-c", script],
        capture_output=True, text=True, check=False, timeout=30, cwd=cwd,
        env={**os.environ, "PATH": path, **(env or {})},
    )  # fmt: skip


def _step_env(
    step: dict[str, Any], parameters: dict[str, str], variables: dict[str, str]
) -> dict[str, str]:
    """A step's `env:` as the agent sets it: template parameters and macros expanded."""
    return {k: _render(str(v), parameters, variables) for k, v in (step.get("env") or {}).items()}


@dataclass
class Handoff:
    """The retrain → release handoff, simulated on disk with the real writer and templates."""

    root: Path

    @property
    def variables(self) -> dict[str, str]:
        retrain = pf.load(pf.PIPELINES_DIR / "retrain.azure-pipelines.yml")
        defined = {v["name"]: str(v["value"]) for v in retrain["variables"] if "name" in v}
        return defined | {
            "Build.ArtifactStagingDirectory": str(self.root / "retrain-agent" / "staging"),
            "Pipeline.Workspace": str(self.root / "release-agent" / "workspace"),
        }

    def summary_file(self) -> Path:
        """Where `mlops pipeline run --summary-file …` in the retrain pipeline writes."""
        retrain = pf.PIPELINES_DIR / "retrain.azure-pipelines.yml"
        runs = [
            i.argv for i in pf.invocations(files=[retrain]) if i.argv[:2] == ["pipeline", "run"]
        ]
        paths = {argv[argv.index("--summary-file") + 1] for argv in runs}
        assert len(runs) >= 1 and len(paths) == 1, paths  # every variant writes the same file
        return Path(_render(paths.pop(), {}, self.variables))

    def retrain(self) -> tuple[list[str], Path]:
        """Run gate-summary.yml's steps as the retrain job calls it: (their output, artifact)."""
        retrain = pf.load(pf.PIPELINES_DIR / "retrain.azure-pipelines.yml")
        [call] = [m for m in pf.walk(retrain) if m.get("template") == "templates/gate-summary.yml"]
        parameters = {k: _render(str(v), {}, self.variables) for k, v in call["parameters"].items()}
        steps = pf.load(pf.TEMPLATES_DIR / "gate-summary.yml")["steps"]
        outputs = []
        for step in (s for s in steps if "script" in s):
            env = _step_env(step, parameters, self.variables)
            result = _run_step(_render(step["script"], {}, self.variables), pf.ROOT, env)
            assert result.returncode == 0, result.stdout + result.stderr
            outputs.append(result.stdout)
        [publish] = [s for s in steps if "publish" in s]
        assert publish["artifact"] == "gate"
        return outputs, Path(_render(publish["publish"], parameters, self.variables))

    def release(
        self, artifact: Path | None, model: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Download the artifact as the release does, then run resolve-model.yml's script with
        the release's `model` parameter (its default unless given)."""
        steps = pf.load(pf.TEMPLATES_DIR / "resolve-model.yml")["steps"]
        [download] = [m for m in pf.walk(steps) if "download" in m]
        release = pf.load(pf.PIPELINES_DIR / "release.azure-pipelines.yml")
        [resource] = release["resources"]["pipelines"]
        assert download["download"] == resource["pipeline"]
        [parameter] = release["parameters"]
        model = parameter["default"] if model is None else model
        if artifact is not None:
            target = Path(self.variables["Pipeline.Workspace"], download["download"])
            shutil.copytree(artifact, target / download["artifact"])  # a directory artifact
        [step] = [m for m in pf.walk(steps) if "script" in m]
        env = _step_env(step, {"model": model}, self.variables)
        env["PIPELINE_WORKSPACE"] = self.variables["Pipeline.Workspace"]  # predefined, as env
        return _run_step(_render(step["script"], {}, self.variables), pf.ROOT, env)


@pytest.mark.parametrize("registered", [True, False])
def test_the_release_trigger_follows_the_gate(tmp_path: Path, registered: bool) -> None:
    """What `mlops pipeline run --summary-file` writes is what tags the retrain run and names
    the version the release deploys: the real writer, the real template scripts."""
    handoff = Handoff(tmp_path)
    summary = handoff.summary_file()
    ref = "diabetes-ridge:7" if registered else None
    write_gate_summary(summary, _decision(registered), ref)
    assert json.loads(json_sibling(summary).read_text())["registered"] == ref

    (upload, tag), artifact = handoff.retrain()
    assert upload.strip() == f"##vso[task.uploadsummary]{summary}"  # the Markdown, for people
    assert ("##vso[build.addbuildtag]model-registered" in tag) == registered
    assert sorted(p.name for p in artifact.iterdir()) == ["gate.json", "gate.md"]
    assert artifact == summary.parent

    resolved = handoff.release(artifact)
    if registered:
        assert resolved.returncode == 0, resolved.stdout + resolved.stderr
        assert "##vso[task.setvariable variable=modelRef;isOutput=true]diabetes-ridge:7\n" in (
            resolved.stdout
        )
    else:
        assert resolved.returncode == 1
        assert "##vso[task.logissue type=error]No model to release" in resolved.stdout
        assert "modelRef" not in resolved.stdout


def test_a_manual_release_names_its_model(tmp_path: Path) -> None:
    handoff = Handoff(tmp_path)
    write_gate_summary(handoff.summary_file(), _decision(False), None)
    _, artifact = handoff.retrain()
    resolved = handoff.release(artifact, model="diabetes-ridge:4")
    assert resolved.returncode == 0
    assert "variable=modelRef;isOutput=true]diabetes-ridge:4\n" in resolved.stdout


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "No such file"),
        ("## Gate: passed\n\nOutcome: registered as `diabetes-ridge:7`.\n", "is not JSON"),
        ('{"schema": 2, "registered": "diabetes-ridge:7"}', "schema 2"),
        ('{"schema": 1, "passed": true}', "no 'registered' field"),
    ],
)
def test_an_unreadable_gate_outcome_stops_both_pipelines(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    """No guessing: a missing, Markdown, newer-schema or incomplete gate.json is an error."""
    handoff = Handoff(tmp_path)
    summary = handoff.summary_file()
    write_gate_summary(summary, _decision(True), "diabetes-ridge:7")
    gate = json_sibling(summary)
    if content is None:
        gate.unlink()
    else:
        gate.write_text(content)
    with pytest.raises(AssertionError, match=problem):
        handoff.retrain()
    resolved = handoff.release(summary.parent)
    assert resolved.returncode == 1
    assert "##vso[task.logissue type=error]Could not read the gate outcome" in resolved.stdout
    assert problem in resolved.stderr
    assert "modelRef" not in resolved.stdout


def test_the_documented_gate_json_is_the_written_one() -> None:
    doc = (pf.ROOT / "docs" / "azure-devops.md").read_text()
    [example] = re.findall(r"```json\n(.*?)```", doc, re.DOTALL)
    documented = json.loads(example)
    written = gate_record(_decision(True), "diabetes-ridge:7")
    assert list(documented) == list(written)
    assert {k: type(v) for k, v in documented.items()} == {k: type(v) for k, v in written.items()}


@pytest.mark.parametrize(
    "model",
    [
        "diabetes-ridge:4; echo pwned",
        "$(touch {marker})",
        "diabetes-ridge:4\n##vso[task.setvariable variable=modelRef;isOutput=true]evil:1",
        "diabetes-ridge",
        "diabetes-ridge:latest",
        "",
    ],
)
def test_a_model_that_is_not_name_version_stops_the_release(tmp_path: Path, model: str) -> None:
    """The parameter is data, never code: it reaches bash through `env:` and must read
    NAME:VERSION; nothing of it is echoed back, so it cannot smuggle a logging command."""
    marker = tmp_path / "executed"
    model = model.replace("{marker}", str(marker))
    resolved = Handoff(tmp_path).release(None, model=model)
    assert resolved.returncode == 1
    assert "must read NAME:VERSION" in resolved.stdout
    assert "modelRef" not in resolved.stdout and "pwned" not in resolved.stdout
    assert not marker.exists()


def test_a_registered_value_that_is_not_name_version_stops_the_release(tmp_path: Path) -> None:
    handoff = Handoff(tmp_path)
    write_gate_summary(handoff.summary_file(), _decision(True), "diabetes-ridge:7 --force")
    _, artifact = handoff.retrain()
    resolved = handoff.release(artifact)
    assert resolved.returncode == 1
    assert "must read NAME:VERSION" in resolved.stdout
    assert "modelRef" not in resolved.stdout
