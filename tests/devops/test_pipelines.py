"""The pipeline files: schema, checkov, template references, variables, hygiene, and agreement
with the Azure DevOps stack that creates what they use."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from infra.devops import program
from infra.devops.recording import RecordedDevops
from infra.devops.settings import read_stack_config
from pipelines.cli import write_gate_summary
from pipelines.gate import GateDecision
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
    # Secrets reach a step only through an explicit env mapping of the Key Vault group's names.
    azure_cli = pf.load(pf.TEMPLATES_DIR / "azure-cli.yml")["steps"][0]
    assert azure_cli["env"]["PULUMI_CONFIG_PASSPHRASE"] == "$(pulumi-config-passphrase)"


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
    setup = (pf.TEMPLATES_DIR / "setup-pulumi.yml").read_text()
    assert '--version "$(pulumiVersion)"' in setup
    assert '"uv==$(uvVersion)"' in (pf.TEMPLATES_DIR / "setup-python.yml").read_text()
    for path in pf.pipeline_files():
        assert pf.load(path)["pool"]["vmImage"] != "ubuntu-latest"


def test_azure_steps_use_the_stacks_service_connection() -> None:
    stack = read_stack_config()
    variables = pf.load(pf.TEMPLATES_DIR / "variables.yml")["variables"]
    [name] = [v["value"] for v in variables if v.get("name") == "azureServiceConnection"]
    assert name == stack["mlops-devops:serviceConnection"]["name"]
    task = pf.load(pf.TEMPLATES_DIR / "azure-cli.yml")["steps"][0]
    assert task["task"] == "AzureCLI@2"
    assert task["inputs"]["azureSubscription"] == "${{ variables.azureServiceConnection }}"


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


def _shell(script: str, summary: Path) -> str:
    text = script.replace("${{ parameters.summaryFile }}", str(summary))
    text = text.replace("${{ parameters.model }}", "")
    text = text.replace("$(Pipeline.Workspace)/retrain/gate/gate.md", str(summary))
    return subprocess.run(
        ["bash", "-c", text], capture_output=True, text=True, check=False, timeout=10
    ).stdout


@pytest.mark.parametrize("registered", [True, False])
def test_the_release_trigger_follows_the_gate(tmp_path: Path, registered: bool) -> None:
    """The summary `mlops pipeline run` writes is what tags the run and names the version."""
    summary = tmp_path / "gate.md"
    write_gate_summary(summary, _decision(registered), "diabetes-ridge:7" if registered else None)
    tag_step = pf.load(pf.TEMPLATES_DIR / "gate-summary.yml")["steps"][1]["script"]
    tagged = "##vso[build.addbuildtag]model-registered" in _shell(tag_step, summary)
    assert tagged == registered
    resolve = pf.load(pf.TEMPLATES_DIR / "resolve-model.yml")["steps"][1]["script"]
    output = _shell(resolve, summary)
    if registered:
        assert "variable=modelRef;isOutput=true]diabetes-ridge:7" in output
    else:
        assert "task.logissue type=error" in output
