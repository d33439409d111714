"""The stack-outputs contract: every stack exports every key the pipelines read."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from infra.outputs import CONTRACT, SECRET_KEYS, StackOutputs, StackOutputsError, required_keys
from infra.tooling.recording import RecordedStack


def test_every_stack_exports_exactly_the_contract(recorded: RecordedStack) -> None:
    settings = recorded.settings
    expected = required_keys(aks=settings.aks.enabled, aci=settings.aci.enabled)
    assert set(recorded.outputs) == expected
    for key in required_keys(aks=False, aci=False):
        assert recorded.outputs[key] not in (None, ""), key


def test_secret_outputs_are_secret(recorded: RecordedStack) -> None:
    assert set(recorded.secret_outputs) == SECRET_KEYS
    assert recorded.outputs["app_insights_connection_string"].startswith("InstrumentationKey=")


def test_pipelines_parse_what_the_stacks_export(recorded: RecordedStack) -> None:
    # What `pulumi stack output --json --show-secrets` would print.
    outputs = StackOutputs.from_json(json.dumps(recorded.outputs))
    settings = recorded.settings
    assert outputs.environment == settings.environment
    assert outputs.workspace_name == settings.names.ml_workspace
    assert outputs.acr_login_server == f"{settings.names.container_registry}.azurecr.io"
    assert outputs.key_vault_uri == f"https://{settings.names.key_vault}.vault.azure.net/"
    assert outputs.training_compute_name == settings.training.compute_name
    assert outputs.online_endpoint_name == settings.endpoints.online_name
    assert outputs.has_kubernetes == settings.aks.enabled
    assert outputs.has_qa_service == settings.aci.enabled
    if settings.aks.enabled:
        assert outputs.kubernetes_compute_name == settings.inference.compute_name
        assert outputs.inference_router_scheme == ("https" if settings.is_prod else "http")


def test_training_identity_is_exported(recorded: RecordedStack) -> None:
    """The pipelines can name the training cluster's identity on a job (issue 10)."""
    settings = recorded.settings
    identity = recorded.one(
        "azure-native:managedidentity:UserAssignedIdentity", "training-identity"
    )
    assert identity.get("resourceName") == settings.names.training_identity
    assert recorded.outputs["training_identity_id"] == identity.outputs["id"]
    assert recorded.outputs["training_identity_client_id"] == identity.outputs["clientId"]
    cluster = recorded.one("azure-native:machinelearningservices:Compute", "training-cluster")
    assert cluster.get("identity.userAssignedIdentities") == [identity.outputs["id"]]
    outputs = StackOutputs.from_json(json.dumps(recorded.outputs))
    assert outputs.training_identity_client_id == identity.outputs["clientId"]
    assert outputs.training_identity_id.endswith(
        f"/userAssignedIdentities/{settings.names.training_identity}"
    )


def test_missing_key_is_a_clear_error(recordings: dict[str, RecordedStack]) -> None:
    data = dict(recordings["prod"].outputs)
    del data["workspace_name"]
    with pytest.raises(StackOutputsError, match="lack workspace_name; run `pulumi up`"):
        StackOutputs.from_mapping(data)


def test_half_a_feature_group_is_an_error(recordings: dict[str, RecordedStack]) -> None:
    data = dict(recordings["dev"].outputs)
    del data["kubernetes_namespace"]
    with pytest.raises(StackOutputsError, match="kubernetes_namespace"):
        StackOutputs.from_mapping(data)


def test_masked_secret_is_an_error(recordings: dict[str, RecordedStack]) -> None:
    data = dict(recordings["qa"].outputs)
    data["app_insights_connection_string"] = "[secret]"
    with pytest.raises(StackOutputsError, match="--show-secrets"):
        StackOutputs.from_mapping(data)


def test_contract_matches_the_typed_view() -> None:
    from dataclasses import fields

    assert [spec.key for spec in CONTRACT] == [f.name for f in fields(StackOutputs)]
    assert {s.key for s in CONTRACT} >= {
        "subscription_id", "resource_group", "location", "workspace_name", "registry_name",
        "acr_login_server", "acr_name", "training_compute_name", "kubernetes_compute_name",
        "online_endpoint_name", "batch_endpoint_name", "qa_aci_name", "qa_scoring_url",
        "key_vault_uri", "key_vault_name", "app_insights_connection_string",
        "storage_account_name", "environment",
    }  # fmt: skip


def test_contract_module_does_not_load_the_azure_sdk() -> None:
    code = (
        "import sys, infra.outputs, infra.settings; "
        "print(any(m.startswith(('pulumi', 'pulumi_azure_native')) for m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_docs_list_every_output_and_exception(project_root) -> None:
    from infra.tooling.checks import EXCEPTIONS

    docs = (project_root / "docs" / "infrastructure.md").read_text()
    for spec in CONTRACT:
        assert f"| `{spec.key}` |" in docs, spec.key
    for check_id in EXCEPTIONS:
        assert check_id in docs
