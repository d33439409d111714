"""The pull-request preview runs with Reader only, which cannot list AKS admin credentials.

Reader holds no `Microsoft.ContainerService/managedClusters/listClusterAdminCredential/action`
(Learn, "built-in-roles": Reader is `*/read` only; Learn, "aks/concepts-identity": the admin
credential list is the action of "Azure Kubernetes Service Cluster Admin Role"). So with
`MLOPS_READ_ONLY_PREVIEW=true`, which `pulumi-preview.yml` sets, a preview must not make that
invoke, and every other run must.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from infra.components.aks import READ_ONLY_PREVIEW_ENV
from infra.tooling.recording import record_stack

ADMIN_CREDENTIALS = "azure-native:containerservice:listManagedClusterAdminCredentials"
KUBERNETES_PROVIDER = "pulumi:providers:kubernetes"
PREVIEW_TEMPLATE = (
    Path(__file__).resolve().parents[2] / ".azure-pipelines/templates/pulumi-preview.yml"
)


@pytest.mark.parametrize(
    ("preview", "read_only", "lists_credentials"),
    [(True, True, False), (True, False, True), (False, True, True), (False, False, True)],
)
def test_only_the_read_only_preview_skips_the_admin_credentials(
    monkeypatch: pytest.MonkeyPatch, preview: bool, read_only: bool, lists_credentials: bool
) -> None:
    if read_only:
        monkeypatch.setenv(READ_ONLY_PREVIEW_ENV, "true")
    else:
        monkeypatch.delenv(READ_ONLY_PREVIEW_ENV, raising=False)
    recorded = record_stack("dev", preview=preview)
    assert (ADMIN_CREDENTIALS in recorded.invokes) is lists_credentials
    # The Kubernetes objects are still declared: their provider's kubeconfig is just unknown.
    assert recorded.of_type(KUBERNETES_PROVIDER)


def test_the_preview_template_asks_for_the_read_only_preview() -> None:
    template = yaml.safe_load(PREVIEW_TEMPLATE.read_text())
    (step,) = template["steps"]
    assert step["parameters"]["env"][READ_ONLY_PREVIEW_ENV] == "true"
