"""What differs between dev, qa and prod, asserted on the recorded graphs."""

from __future__ import annotations

import pytest

from infra.tooling.recording import RecordedStack

EXTENSION = "azure-native:kubernetesconfiguration:Extension"


@pytest.fixture
def dev(recordings: dict[str, RecordedStack]) -> RecordedStack:
    return recordings["dev"]


@pytest.fixture
def qa(recordings: dict[str, RecordedStack]) -> RecordedStack:
    return recordings["qa"]


@pytest.fixture
def prod(recordings: dict[str, RecordedStack]) -> RecordedStack:
    return recordings["prod"]


def test_prod_disables_public_network_access(prod: RecordedStack, dev: RecordedStack) -> None:
    storage = prod.one("azure-native:storage:StorageAccount")
    assert storage.get("publicNetworkAccess") == "Disabled"
    assert storage.get("networkRuleSet.defaultAction") == "Deny"
    assert storage.get("networkRuleSet.bypass") == "AzureServices"
    vault = prod.one("azure-native:keyvault:Vault")
    assert vault.get("properties.publicNetworkAccess") == "Disabled"
    assert vault.get("properties.networkAcls.defaultAction") == "Deny"
    assert prod.one("azure-native:containerregistry:Registry").get("publicNetworkAccess") == (
        "Disabled"
    )
    workspace = prod.one("azure-native:machinelearningservices:Workspace")
    assert workspace.get("publicNetworkAccess") == "Disabled"
    # Kubernetes compute rules out a managed network (Learn, "how-to-managed-network").
    assert workspace.get("managedNetwork") is None
    online = prod.one("azure-native:machinelearningservices:OnlineEndpoint")
    assert online.get("properties.publicNetworkAccess") == "Disabled"
    assert (
        dev.one("azure-native:machinelearningservices:OnlineEndpoint").get(
            "properties.publicNetworkAccess"
        )
        == "Enabled"
    )
    # dev stays reachable for laptops and hosted agents
    assert dev.one("azure-native:storage:StorageAccount").get("publicNetworkAccess") == "Enabled"


def test_prod_reaches_everything_through_private_endpoints(prod: RecordedStack) -> None:
    endpoints = prod.of_type("azure-native:network:PrivateEndpoint")
    groups = sorted(e.get("privateLinkServiceConnections")[0]["groupIds"][0] for e in endpoints)
    assert groups == ["amlworkspace", "blob", "file", "registry", "vault"]
    zones = {z.get("privateZoneName") for z in prod.of_type("azure-native:privatedns:PrivateZone")}
    assert "privatelink.api.azureml.ms" in zones
    assert "privatelink.azurecr.io" in zones
    cluster = prod.one("azure-native:containerservice:ManagedCluster")
    for pool in cluster.get("agentPoolProfiles"):
        assert pool["vnetSubnetID"].endswith("/subnets/snet-aks")
    assert cluster.get("apiServerAccessProfile") == {
        "enablePrivateCluster": True,
        "enablePrivateClusterPublicFQDN": True,
    }
    # The training cluster joins the same VNet, without public IPs, egressing through NAT.
    training = prod.one("azure-native:machinelearningservices:Compute", "training-cluster")
    assert training.get("properties.properties.subnet.id").endswith("/subnets/snet-training")
    assert training.get("properties.properties.enableNodePublicIp") is False
    subnet = next(
        s
        for s in prod.of_type("azure-native:network:Subnet")
        if s.get("subnetName") == "snet-training"
    )
    nat = prod.one("azure-native:network:NatGateway")
    assert subnet.get("natGateway.id") == nat.outputs["id"]


def test_dev_and_qa_have_no_private_network(dev: RecordedStack, qa: RecordedStack) -> None:
    for recorded in (dev, qa):
        assert not recorded.of_type("azure-native:network:VirtualNetwork")
        assert not recorded.of_type("azure-native:network:PrivateEndpoint")


def test_prod_uses_premium_acr_without_quarantine(prod: RecordedStack, dev: RecordedStack) -> None:
    registry = prod.one("azure-native:containerregistry:Registry")
    assert registry.get("sku.name") == "Premium"
    assert registry.get("zoneRedundancy") == "Enabled"
    # Azure ML pushes and pulls its environment images here: quarantine would block them.
    assert registry.get("policies.quarantinePolicy.status") == "disabled"
    assert dev.one("azure-native:containerregistry:Registry").get("sku.name") == "Standard"
    for recorded in (prod, dev):
        assert recorded.one("azure-native:containerregistry:Registry").get("adminUserEnabled") is (
            False
        )


def test_prod_storage_is_geo_redundant(prod: RecordedStack, dev: RecordedStack) -> None:
    assert prod.one("azure-native:storage:StorageAccount").get("sku.name") == "Standard_RAGZRS"
    assert dev.one("azure-native:storage:StorageAccount").get("sku.name") == "Standard_LRS"


def test_router_settings_per_environment(prod: RecordedStack, dev: RecordedStack) -> None:
    prod_settings = prod.one(EXTENSION).get("configurationSettings")
    assert prod_settings["allowInsecureConnections"] == "False"
    assert prod_settings["inferenceRouterHA"] == "True"
    assert prod_settings["sslCname"] == "scoring.example.com"
    assert prod_settings["sslSecret"] == prod_settings["scoringFe.sslSecret"] == "azureml-fe-tls"
    assert prod_settings["clusterPurpose"] == "FastProd"
    dev_settings = dev.one(EXTENSION).get("configurationSettings")
    assert dev_settings["allowInsecureConnections"] == "True"
    assert dev_settings["inferenceRouterHA"] == "False"
    assert "sslCname" not in dev_settings
    for settings in (prod_settings, dev_settings):
        assert settings["enableInference"] == "True"
        assert settings["inferenceRouterServiceType"] == "LoadBalancer"
        assert all(isinstance(value, str) for value in settings.values())
        assert settings["clusterId"].endswith(
            "/managedClusters/" + settings["cluster_name_friendly"]
        )


def test_prod_tls_secret_exists_before_the_extension(
    prod: RecordedStack, dev: RecordedStack
) -> None:
    tls = prod.one("kubernetes:core/v1:Secret")
    assert tls.get("metadata.namespace") == "azureml"
    assert tls.get("metadata.name") == "azureml-fe-tls"
    assert set(tls.get("stringData")) == {"cert.pem", "key.pem"}
    assert prod.depends_on(prod.one(EXTENSION), tls)
    assert not dev.of_type("kubernetes:core/v1:Secret")


def test_prod_nodes_use_ephemeral_disks_and_host_encryption(prod: RecordedStack) -> None:
    cluster = prod.one("azure-native:containerservice:ManagedCluster")
    assert cluster.get("sku.tier") == "Standard"
    for pool in cluster.get("agentPoolProfiles"):
        assert pool["osDiskType"] == "Ephemeral"
        assert pool["enableEncryptionAtHost"] is True


def test_qa_serves_from_aci_not_aks(qa: RecordedStack) -> None:
    group = qa.one("azure-native:containerinstance:ContainerGroup")
    assert group.get("ipAddress.type") == "Public"
    assert group.get("ipAddress.dnsNameLabel") == "mlops-qa-t3mpl"
    assert group.get("identity.type") == "UserAssigned"
    assert group.get("diagnostics.logAnalytics.workspaceId")
    assert not qa.of_type("azure-native:containerservice:ManagedCluster")
    assert qa.outputs["qa_scoring_url"] == (
        "http://mlops-qa-t3mpl.westeurope.azurecontainer.io:5001/score"
    )


def test_one_stack_owns_the_shared_registry(recordings: dict[str, RecordedStack]) -> None:
    owners = [
        s
        for s, r in recordings.items()
        if r.of_type("azure-native:machinelearningservices:Registry")
    ]
    assert owners == ["dev"]
    registry = recordings["dev"].one("azure-native:machinelearningservices:Registry")
    assert registry.retain_on_delete
    assert registry.get("resourceGroupName") == "rg-mlops-shared"
    names = {r.outputs["registry_name"] for r in recordings.values()}
    assert names == {"mlops-registry-t3mpl"}  # every stack promotes through the same one
    for stack in ("qa", "prod"):
        assert "azure-native:machinelearningservices:getRegistry" in recordings[stack].invokes


def test_pipeline_principal_gets_only_its_grants(stack_config) -> None:
    from infra.tooling.recording import record_stack

    config = stack_config("prod")
    config["mlops:access"] = {"pipelinePrincipalId": "11111111-2222-3333-4444-555555555555"}
    recorded = record_stack("prod", config)
    grants = [
        a
        for a in recorded.of_type("azure-native:authorization:RoleAssignment")
        if a.get("principalId") == "11111111-2222-3333-4444-555555555555"
    ]
    roles = sorted(a.get("roleDefinitionId").rsplit("/", 1)[-1] for a in grants)
    from infra.policies import ALLOWED_ROLES

    assert sorted(ALLOWED_ROLES[r] for r in roles) == [
        "AcrPush",
        "AzureML Data Scientist",
        "AzureML Registry User",
        "Key Vault Secrets User",
        "Storage Blob Data Contributor",
    ]
