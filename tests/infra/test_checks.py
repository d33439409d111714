"""Security posture: checkov (for real) on the ARM exports, plus the ARM export itself."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.tooling.arm import SPECS, to_arm_template
from infra.tooling.checks import (
    CONDITIONAL_EXCEPTIONS,
    EXCEPTIONS,
    PROD_ONLY,
    REQUIRED_ALL,
    REQUIRED_PROD,
    CheckResult,
    classify_checkov,
    conditional_exceptions,
    missing_required,
)
from infra.tooling.recording import PLACEHOLDER_PREFIX, RecordedStack


def test_api_versions_match_the_installed_sdk() -> None:
    # Read the SDK sources without importing them (a direct submodule import would break
    # the SDK's lazy module loading for the rest of the session).
    spec_of_sdk = importlib.util.find_spec("pulumi_azure_native")
    assert spec_of_sdk is not None and spec_of_sdk.submodule_search_locations
    sdk = Path(next(iter(spec_of_sdk.submodule_search_locations)))
    for type_token, spec in SPECS.items():
        _, module, name = type_token.split(":")
        file_name = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name).lower()
        text = (sdk / module / f"{file_name}.py").read_text()
        found = re.search(r"Uses Azure REST API version ([0-9a-z-]+)", text)
        assert found and found.group(1) == spec.api_version, type_token


def test_arm_template_shape(recordings: dict[str, RecordedStack]) -> None:
    template = to_arm_template(recordings["prod"])
    assert template["$schema"].endswith("deploymentTemplate.json#")
    by_type: dict[str, list[dict[str, Any]]] = {}
    for resource in template["resources"]:
        assert {"type", "apiVersion", "name", "properties"} <= set(resource)
        by_type.setdefault(resource["type"], []).append(resource)
    storage = by_type["Microsoft.Storage/storageAccounts"][0]
    assert storage["name"] == "stmlopsprodt3mpl"
    assert storage["sku"] == {"name": "Standard_RAGZRS"}
    assert storage["properties"]["networkAcls"]["defaultAction"] == "Deny"  # ARM's name
    assert storage["properties"]["supportsHttpsTrafficOnly"] is True
    assert "resourceGroupName" not in storage["properties"]
    secret = by_type["Microsoft.KeyVault/vaults/secrets"][0]
    assert secret["name"] == "kv-mlops-prod-t3mpl/scoring-api-key"
    assert isinstance(secret["properties"]["attributes"]["exp"], int)
    pool = by_type["Microsoft.ContainerService/managedClusters"][0]["properties"][
        "agentPoolProfiles"
    ][0]
    assert pool["maxPods"] == 60 and isinstance(pool["maxPods"], int)
    extension = by_type["Microsoft.KubernetesConfiguration/extensions"][0]
    assert extension["scope"] == "Microsoft.ContainerService/managedClusters/aks-mlops-prod"
    assert "Microsoft.Resources/resourceGroups" not in by_type


def test_no_secret_value_reaches_the_template(recorded: RecordedStack) -> None:
    text = json.dumps(to_arm_template(recorded))
    assert PLACEHOLDER_PREFIX not in text
    assert "clusterAdmin" not in text  # the kubeconfig is not an Azure resource


def _ids(report: Any, outcome: str, source: str = "checkov") -> set[str]:
    return {r.check_id for r in report.results if r.outcome == outcome and r.source == source}


@pytest.mark.parametrize("stack", ["dev", "qa", "prod"])
def test_no_check_fails_outside_the_documented_exceptions(
    check_reports: dict[str, Any], stack: str
) -> None:
    report = check_reports[stack]
    failed = [r for r in report.results if r.outcome == "failed"]
    assert failed == [], failed
    assert report.ok


def test_only_the_documented_exceptions(check_reports: dict[str, Any]) -> None:
    assert set(EXCEPTIONS) == {"CKV_AZURE_141", "CKV_AZURE_166", "CKV_AZURE_172"}
    assert _ids(check_reports["dev"], "exception") == set(EXCEPTIONS)
    assert _ids(check_reports["qa"], "exception") == {"CKV_AZURE_166"}  # no AKS in qa
    # prod adds the two that hold only for its private resources
    assert _ids(check_reports["prod"], "exception") == set(EXCEPTIONS) | set(CONDITIONAL_EXCEPTIONS)


def test_conditional_exceptions_need_their_condition(recordings: dict[str, RecordedStack]) -> None:
    template = to_arm_template(recordings["prod"])
    assert set(conditional_exceptions(template)) == {
        ("CKV_AZURE_6", "Microsoft.ContainerService/managedClusters.aks-mlops-prod"),
        ("CKV_AZURE_243", "Microsoft.MachineLearningServices/workspaces.mlw-mlops-prod"),
    }
    # broken input: a public API server and a workspace without its private endpoint
    for resource in template["resources"]:
        if resource["type"] == "Microsoft.ContainerService/managedClusters":
            resource["properties"]["apiServerAccessProfile"] = {"enablePrivateCluster": False}
    template["resources"] = [
        r for r in template["resources"] if r["type"] != "Microsoft.Network/privateEndpoints"
    ]
    assert conditional_exceptions(template) == {}
    assert conditional_exceptions(to_arm_template(recordings["dev"])) == {}


def test_prod_passes_every_listed_check(check_reports: dict[str, Any]) -> None:
    passed = _ids(check_reports["prod"], "passed") | set(CONDITIONAL_EXCEPTIONS)
    for table in (REQUIRED_ALL, REQUIRED_PROD):
        for checks in table.values():
            assert set(checks) <= passed
    assert _ids(check_reports["prod"], "not required") == set()


def test_dev_passes_its_checks_and_skips_only_prod_ones(check_reports: dict[str, Any]) -> None:
    report = check_reports["dev"]
    passed = _ids(report, "passed")
    for checks in REQUIRED_ALL.values():
        assert set(checks) <= passed
    assert _ids(report, "not required") <= PROD_ONLY


def test_qa_without_aks_needs_no_aks_checks(check_reports: dict[str, Any]) -> None:
    report = check_reports["qa"]
    assert not {
        r
        for r in _ids(report, "passed")
        if r in REQUIRED_ALL["Microsoft.ContainerService/managedClusters"]
    }
    assert _ids(report, "exception") == {"CKV_AZURE_166"}


def test_own_checks_run_too(check_reports: dict[str, Any]) -> None:
    prod = check_reports["prod"]
    own = _ids(prod, "passed", source="mlops")
    assert {
        "mlops-aks",
        "mlops-azureml-extension",
        "mlops-least-privilege",
        "mlops-instancetypes-after-extension",
        "mlops-attach-after-namespaces",
        "mlops-secrets-are-secret",
        "mlops-k8s-explicit-provider",
    } <= own
    assert "mlops-registry-retained" in _ids(check_reports["dev"], "passed", source="mlops")


def test_classification() -> None:
    rows = [
        ("CKV_AZURE_35", "deny by default", "Microsoft.Storage/storageAccounts.st", "FAILED"),
        ("CKV_AZURE_141", "local admin", "Microsoft.ContainerService/managedClusters.a", "FAILED"),
        ("CKV_AZURE_3", "https", "Microsoft.Storage/storageAccounts.st", "PASSED"),
        ("CKV_AZURE_44", "tls", "Microsoft.Storage/storageAccounts.st", "FAILED"),
    ]
    dev = {r.check_id: r.outcome for r in classify_checkov("dev", "dev", rows)}
    prod = {r.check_id: r.outcome for r in classify_checkov("prod", "prod", rows)}
    assert dev == {
        "CKV_AZURE_35": "not required",
        "CKV_AZURE_141": "exception",
        "CKV_AZURE_3": "passed",
        "CKV_AZURE_44": "failed",
    }
    assert prod["CKV_AZURE_35"] == "failed"  # required in prod


def test_a_required_check_that_never_ran_fails() -> None:
    results = [CheckResult("dev", "checkov", "CKV_AZURE_3", "", "st", "passed")]
    missing = missing_required("dev", "dev", {"Microsoft.Storage/storageAccounts"}, results)
    assert {r.check_id for r in missing} == {"CKV_AZURE_43", "CKV_AZURE_44", "CKV_AZURE_36"}
    assert all(r.outcome == "failed" for r in missing)
