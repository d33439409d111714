"""The project's own policies pass on the real graphs and catch each kind of drift."""

from __future__ import annotations

import dataclasses
import fcntl
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from infra.policies import (
    PolicyResource,
    environment_of,
    evaluate,
)
from infra.tooling.checks import policy_resources
from infra.tooling.recording import RecordedStack
from pipelines.scoring_env import (
    REPO_ROOT,
    STAMP_FILE,
    find_uv,
    requirements_fingerprint,
    venv_python,
)
from tests.infra.crossguard_harness import crossguard_run, graphs_to_json
from tests.infra.graph_edits import mutated


def test_policies_pass_on_every_stack(recorded: RecordedStack) -> None:
    report = evaluate(policy_resources(recorded), recorded.settings.environment)
    assert report.violations == []
    if recorded.settings.aks.enabled:
        assert "mlops-aks" in report.evaluated
        assert "mlops-azureml-extension" in report.evaluated


def _messages(resources: list[PolicyResource], environment: str) -> list[str]:
    return [f"{v.policy}: {v.message}" for v in evaluate(resources, environment).violations]


CASES: list[tuple[str, str, str, Callable[[dict[str, Any]], None], str]] = [
    ("dev", "azure-native:containerregistry:Registry", "admin user",
     lambda p: p.update(adminUserEnabled=True), "mlops-acr: has the admin user enabled"),
    ("dev", "azure-native:storage:StorageAccount", "old TLS",
     lambda p: p.update(minimumTlsVersion="TLS1_0"), "accepts TLS older than 1.2"),
    ("dev", "azure-native:keyvault:Vault", "access policies",
     lambda p: p["properties"].update(enableRbacAuthorization=False), "RBAC authorization"),
    ("dev", "azure-native:keyvault:Secret", "no expiry",
     lambda p: p["properties"].pop("attributes"), "has no expiry date"),
    ("dev", "azure-native:containerservice:ManagedCluster", "dashboard left implicit",
     lambda p: p["addonProfiles"].pop("kubeDashboard"), "disable the dashboard explicitly"),
    ("dev", "azure-native:containerservice:ManagedCluster", "second pool below 50 pods",
     lambda p: p["agentPoolProfiles"][1].update(maxPods=30), "pool azureml allows fewer than 50"),
    ("dev", "azure-native:containerservice:ManagedCluster", "unlabelled pool",
     lambda p: p["agentPoolProfiles"][1].pop("nodeLabels"), "no user pool labelled"),
    ("dev", "azure-native:containerservice:ManagedCluster", "rotation off",
     lambda p: p["addonProfiles"]["azureKeyvaultSecretsProvider"]["config"].update(
         enableSecretRotation="false"), "does not rotate"),
    ("prod", "azure-native:kubernetesconfiguration:Extension", "HTTP in prod",
     lambda p: p["configurationSettings"].update(allowInsecureConnections="True"),
     "allows insecure (HTTP) connections"),
    ("prod", "azure-native:kubernetesconfiguration:Extension", "boolean setting",
     lambda p: p["configurationSettings"].update(inferenceRouterHA=True), "is not a string"),
    ("prod", "azure-native:machinelearningservices:Workspace", "public prod workspace",
     lambda p: p.update(publicNetworkAccess="Enabled"), "reachable from public networks"),
    ("dev", "azure-native:machinelearningservices:Workspace", "v1 legacy mode",
     lambda p: p.pop("v1LegacyMode"), "v1 legacy mode"),
    ("dev", "azure-native:authorization:RoleAssignment", "Owner",
     lambda p: p.update(roleDefinitionId=p["roleDefinitionId"].rsplit("/", 1)[0]
                        + "/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"), "not on the least-privilege"),
    ("dev", "azure-native:machinelearningservices:Workspace", "system-assigned workspace",
     lambda p: p.update(identity={"type": "SystemAssigned"}),
     "mlops-user-assigned-identities: uses identity type SystemAssigned"),
    ("dev", "azure-native:machinelearningservices:Workspace", "no primary identity",
     lambda p: p.pop("primaryUserAssignedIdentity"), "has no primaryUserAssignedIdentity"),
    ("prod", "azure-native:machinelearningservices:OnlineEndpoint", "system-assigned endpoint",
     lambda p: p.update(identity={"type": "SystemAssigned"}), "not UserAssigned"),
    ("prod", "azure-native:machinelearningservices:BatchEndpoint", "system-assigned batch",
     lambda p: p.update(identity={"type": "SystemAssigned"}), "not UserAssigned"),
    ("dev", "azure-native:authorization:RoleAssignment", "resource-group scope",
     lambda p: p.update(scope=p["scope"].split("/providers/")[0]), "resource group"),
    ("dev", "azure-native:authorization:RoleAssignment", "no principal type",
     lambda p: p.pop("principalType"), "principalType"),
    ("qa", "azure-native:containerinstance:ContainerGroup", "key in plain value",
     lambda p: p["containers"][0]["environmentVariables"][1].update(value="abc"),
     "passes SCORING_API_KEY as a plain environment value"),
    ("qa", "azure-native:containerinstance:ContainerGroup", "registry password",
     lambda p: p["imageRegistryCredentials"][0].update(password="x"), "with a password"),
    ("dev", "azure-native:storage:StorageAccount", "untagged",
     lambda p: p.pop("tags"), "mlops-tags: lacks the tags"),
    ("dev", "azure-native:storage:StorageAccount", "name too long",
     lambda p: p.update(accountName="stmlopsdevelopmentplatform01"), "has 28 characters"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("stack", "type_token", "change", "expected"),
    [(stack, t, change, expected) for stack, t, _, change, expected in CASES],
    ids=[case[2] for case in CASES],
)
def test_policy_catches(
    recordings: dict[str, RecordedStack],
    stack: str,
    type_token: str,
    change: Callable[[dict[str, Any]], None],
    expected: str,
) -> None:
    recorded = recordings[stack]
    messages = _messages(mutated(recorded, type_token, change), recorded.settings.environment)
    assert any(expected in message for message in messages), messages


def test_traffic_must_stay_with_the_release(recordings: dict[str, RecordedStack]) -> None:
    resources = policy_resources(recordings["dev"])
    for index, resource in enumerate(resources):
        if resource.resource_type.endswith(":OnlineEndpoint"):
            resources[index] = dataclasses.replace(resource, ignore_changes=())
    messages = _messages(resources, "dev")
    assert any("overwrite traffic" in m for m in messages)


def test_instance_types_created_before_the_extension_are_caught(
    recordings: dict[str, RecordedStack],
) -> None:
    resources = [
        dataclasses.replace(r, dependencies=()) if r.resource_type.endswith(":InstanceType") else r
        for r in policy_resources(recordings["dev"])
    ]
    messages = _messages(resources, "dev")
    assert sum("without waiting for the Azure ML extension" in m for m in messages) == 2


def test_attach_without_its_namespace_is_caught(recordings: dict[str, RecordedStack]) -> None:
    resources = [
        dataclasses.replace(
            r, dependencies=tuple(d for d in r.dependencies if "Namespace" not in d)
        )
        if r.name.startswith("azureml-k8s-attach")
        else r
        for r in policy_resources(recordings["prod"])
    ]
    assert any("before its namespace mlops-prod exists" in m for m in _messages(resources, "prod"))


def test_environment_comes_from_tags_then_stack_then_prod() -> None:
    assert environment_of("urn:pulumi:dev::mlops::x::y", {"tags": {"environment": "qa"}}) == "qa"
    assert environment_of("urn:pulumi:dev::mlops::x::y", {}) == "dev"
    assert environment_of("urn:pulumi:staging::mlops::x::y", {}) == "prod"


def _insecure_prod_extension(recordings: dict[str, RecordedStack]) -> list[PolicyResource]:
    return mutated(
        recordings["prod"],
        "azure-native:kubernetesconfiguration:Extension",
        lambda p: p["configurationSettings"].update(allowInsecureConnections="True"),
    )


INSECURE_EXTENSION = "azureml-k8s-extension allows insecure"


def test_crossguard_adapters_agree_with_the_check(recordings: dict[str, RecordedStack]) -> None:
    assert crossguard_run(policy_resources(recordings["prod"])) == []
    reported = crossguard_run(_insecure_prod_extension(recordings))
    assert any(INSECURE_EXTENSION in message for message, _ in reported)


# pulumi-policy pins an older protobuf and grpcio than the ops environment uses, so the pack is
# tried in its own virtualenv, built from the same requirements file as the pack's.
POLICY_VENV = REPO_ROOT / ".venv-policy"
POLICY_REQUIREMENTS = REPO_ROOT / "infra" / "policy_pack" / "requirements.txt"


def _policy_venv_fingerprint() -> str:
    python = ".".join(map(str, sys.version_info[:3]))
    return f"{requirements_fingerprint(POLICY_REQUIREMENTS)} python{python}"


def _build_step(command: list[str], what: str) -> None:
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        pytest.fail(
            f"{what} for {POLICY_VENV.name} failed (exit code {result.returncode}); this test "
            f"needs uv and access to PyPI to install {POLICY_REQUIREMENTS.relative_to(REPO_ROOT)}"
            f":\n{output[-3000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="session")
def policy_venv() -> Path:
    """`.venv-policy`: built with uv once, rebuilt only when the pack's requirements change."""
    stamp = POLICY_VENV / STAMP_FILE
    fingerprint = _policy_venv_fingerprint()
    lock_dir = REPO_ROOT / ".mlops"
    lock_dir.mkdir(exist_ok=True)
    with (lock_dir / "policy-env.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two test runs building it at once would corrupt it
        if (
            venv_python(POLICY_VENV).is_file()
            and stamp.is_file()
            and stamp.read_text().strip() == fingerprint
        ):
            return POLICY_VENV
        uv = find_uv()
        if uv is None:
            pytest.fail(
                f"uv is not installed, and {POLICY_VENV.name} needs it; run `make bootstrap` "
                "(it installs uv) or `pip install uv`",
                pytrace=False,
            )
        stamp.unlink(missing_ok=True)
        _build_step(
            [uv, "venv", "--clear", "--python", sys.executable, str(POLICY_VENV)],
            "creating the virtualenv",
        )
        _build_step(
            [uv, "pip", "install", "--python", str(venv_python(POLICY_VENV)),
             "-r", str(POLICY_REQUIREMENTS)],
            "installing the policy pack's requirements",
        )  # fmt: skip
        stamp.write_text(fingerprint + "\n")
    return POLICY_VENV


def test_policy_pack_builds_with_crossguard(
    policy_venv: Path, recordings: dict[str, RecordedStack], tmp_path: Path
) -> None:
    clean = policy_resources(recordings["prod"])
    broken = _insecure_prod_extension(recordings)
    graphs = tmp_path / "graphs.json"
    graphs.write_text(graphs_to_json([clean, broken]))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONHOME", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(REPO_ROOT)
    result = subprocess.run(
        [str(venv_python(policy_venv)), "-m", "tests.infra.crossguard_harness", str(graphs)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, f"the pack failed in {policy_venv.name}:\n{result.stderr}"
    reported = [[(message, urn) for message, urn in graph] for graph in json.loads(result.stdout)]
    # The live pack reports exactly what its adapters report in the ops environment.
    assert reported == [[], crossguard_run(broken)]
    assert any(INSECURE_EXTENSION in message for message, _ in reported[1]), reported[1]


def test_policy_pack_module_imports_without_starting_a_server() -> None:
    import importlib

    module = importlib.import_module("infra.policy_pack.pack")
    assert callable(module.main)
