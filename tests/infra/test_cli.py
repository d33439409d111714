"""`mlops infra plan|check|size` through the real CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest
from typer.testing import CliRunner

from infra.tooling.recording import RecordedStack
from pipelines.cli import app

runner = CliRunner()


def _mlops(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `mlops` as a user would (entry point, error handling, exit code)."""
    code = "import sys; from pipelines.cli import main; sys.argv = ['mlops', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False
    )


@pytest.fixture
def recorded_plan(
    monkeypatch: pytest.MonkeyPatch, recordings: dict[str, RecordedStack]
) -> dict[str, RecordedStack]:
    """Let the plan command use the session's recordings instead of recording again."""
    import pipelines.commands.infra as commands

    monkeypatch.setattr(commands, "_record", lambda stack: recordings[stack])
    return recordings


def _plan_json(stack: str) -> dict[str, Any]:
    result = runner.invoke(app, ["infra", "plan", "--stack", stack, "--format", "json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_size_prints_the_worked_example() -> None:
    result = _mlops(
        "infra", "size", "--rps", "20", "--latency-ms", "10000",
        "--target-utilization", "0.7", "--max-concurrent", "1",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "replicas: 286" in result.stdout
    assert "nodes: 20" in result.stdout
    assert "mlops:aks.userPool.maxCount" in result.stdout


def test_size_rejects_invalid_input_in_one_sentence() -> None:
    result = _mlops("infra", "size", "--rps", "0", "--latency-ms", "100")
    assert result.returncode != 0
    assert "--rps must be greater than 0" in result.stderr
    assert "Traceback" not in result.stderr


def test_size_on_a_stack_without_aks() -> None:
    result = _mlops("infra", "size", "--rps", "5", "--latency-ms", "100", "--stack", "qa")
    assert result.returncode != 0
    assert "has no AKS cluster" in result.stderr


def test_unknown_stack_is_a_clear_error() -> None:
    result = _mlops("infra", "plan", "--stack", "staging")
    assert result.returncode != 0
    assert "There is no stack 'staging'; use one of: dev, qa, prod." in result.stderr


def test_prod_plan_lists_the_platform(recorded_plan: dict[str, RecordedStack]) -> None:
    plan = _plan_json("prod")
    assert plan["stack"] == "prod"
    types = {r["type"] for r in plan["resources"]}
    assert {
        "azure-native:machinelearningservices:Workspace",
        "azure-native:containerregistry:Registry",
        "azure-native:keyvault:Vault",
        "azure-native:storage:StorageAccount",
        "azure-native:applicationinsights:Component",
        "azure-native:containerservice:ManagedCluster",
        "azure-native:kubernetesconfiguration:Extension",
        "kubernetes:amlarc.azureml.com/v1alpha1:InstanceType",
        "azure-native:machinelearningservices:OnlineEndpoint",
        "azure-native:machinelearningservices:BatchEndpoint",
        "azure-native:authorization:RoleAssignment",
    } <= types
    computes = {
        r["inputs"]["properties"]["computeType"]
        for r in plan["resources"]
        if r["type"] == "azure-native:machinelearningservices:Compute"
    }
    assert computes == {"AmlCompute", "Kubernetes"}
    for resource in plan["resources"]:
        assert {"type", "name", "inputs"} <= set(resource)
    assert "offline-placeholder" not in json.dumps(plan)  # secrets are masked
    assert plan["outputs"]["app_insights_connection_string"] == "[secret]"


def test_qa_plan_lists_the_aci_container_group(recorded_plan: dict[str, RecordedStack]) -> None:
    plan = _plan_json("qa")
    groups = [
        r for r in plan["resources"] if r["type"] == "azure-native:containerinstance:ContainerGroup"
    ]
    assert len(groups) == 1
    assert groups[0]["azure_name"] == "aci-mlops-qa"


def test_plan_tree(recorded_plan: dict[str, RecordedStack]) -> None:
    result = runner.invoke(app, ["infra", "plan", "--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert "mlops:workspace:Workspace" in result.stdout
    assert "stmlopsdevt3mpl" in result.stdout
    assert "pulumi preview" in result.stdout


def test_check_dev_end_to_end() -> None:
    """The real command: records dev, runs checkov on its ARM export, exits 0."""
    result = _mlops("infra", "check", "--stack", "dev")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "CKV_AZURE_141" in result.stdout and "CKV_AZURE_172" in result.stdout
    assert "3 documented exceptions" in result.stdout
    assert "0 failed" in result.stdout


def test_check_fails_on_a_violation(
    monkeypatch: pytest.MonkeyPatch, recordings: dict[str, RecordedStack]
) -> None:
    import pipelines.commands.infra as commands
    from infra.tooling.checks import CheckResult, StackReport

    def fake_check_stacks(stacks: list[str], workdir: Any, recordings: Any) -> list[StackReport]:
        failing = CheckResult("dev", "checkov", "CKV_AZURE_44", "tls", "st", "failed")
        return [StackReport("dev", "dev", [failing])]

    monkeypatch.setattr(commands, "_record", lambda stack: recordings[stack])
    monkeypatch.setattr("infra.tooling.checks.check_stacks", fake_check_stacks)
    result = runner.invoke(app, ["infra", "check", "--stack", "dev"])
    assert result.exit_code == 1
    assert "CKV_AZURE_44" in result.stdout


def test_help_does_not_import_pulumi() -> None:
    code = (
        "import sys; from pipelines.cli import app; "
        "print(any(m.startswith('pulumi') for m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "False"
