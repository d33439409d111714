"""Settings: the three stack files load, and every kind of mistake gets one clear sentence."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from infra.naming import Names, name_problem
from infra.settings import (
    SettingsError,
    load_stack_settings,
    settings_from_config,
)


def _fail(config: dict[str, Any], stack: str = "dev") -> str:
    with pytest.raises(SettingsError) as caught:
        settings_from_config(config, stack)
    message = str(caught.value)
    # One sentence: no line breaks, ends with a period, names the stack file.
    assert "\n" not in message
    assert message.endswith(".")
    assert f"Pulumi.{stack}.yaml" in message
    return message


@pytest.mark.parametrize("stack", ["dev", "qa", "prod"])
def test_stack_files_load(stack: str) -> None:
    settings = load_stack_settings(stack)
    assert settings.environment == stack
    assert settings.location == "westeurope"
    assert settings.training.min_nodes == 0  # training scales to zero everywhere
    for kind, name in settings.names.checked():
        assert name_problem(kind, name) is None


def test_environment_profiles() -> None:
    dev, qa, prod = (load_stack_settings(s) for s in ("dev", "qa", "prod"))
    assert dev.aks.enabled and prod.aks.enabled and not qa.aks.enabled
    assert qa.aci.enabled and not dev.aci.enabled and not prod.aci.enabled
    assert dev.inference.allow_insecure_connections and not dev.inference.router_ha
    assert prod.inference.tls_enabled and prod.inference.router_ha
    assert [s.model_registry.create for s in (dev, qa, prod)] == [True, False, False]
    assert prod.secret_config_keys() == [
        "scoringApiKey",
        "inferenceTlsCertPem",
        "inferenceTlsKeyPem",
    ]


def test_name_too_long_for_azure(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:endpoints"]["onlineName"] = "diabetes-online-endpoint-for-dev-env"
    message = _fail(config)
    assert "mlops:endpoints.onlineName" in message
    assert "3-32" in message


def test_compute_name_longer_than_16(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:training"]["computeName"] = "training-cluster-01"
    assert "2-16" in _fail(config)


def test_unknown_region_suggests_a_real_one(stack_config) -> None:
    config = stack_config("dev")
    config["azure-native:location"] = "westeuropa"
    message = _fail(config)
    assert "not an Azure region" in message
    assert "'westeurope'" in message


def test_region_display_name_is_normalized(stack_config) -> None:
    config = stack_config("dev")
    config["azure-native:location"] = "West Europe"
    assert settings_from_config(config, "dev").location == "westeurope"


def test_min_nodes_above_max(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:aks"]["userPool"]["minCount"] = 5
    message = _fail(config)
    assert "mlops:aks.userPool.minCount (5) is above maxCount (3)" in message


def test_training_min_above_max(stack_config) -> None:
    config = stack_config("qa")
    config["mlops:training"]["minNodes"] = 3
    assert "minNodes (3) is above maxNodes (2)" in _fail(config, "qa")


def test_prod_with_insecure_router_is_rejected(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:inference"]["allowInsecureConnections"] = True
    message = _fail(config, "prod")
    assert "insecure (HTTP)" in message
    assert "allowInsecureConnections to false" in message


def test_prod_without_router_ha_is_rejected(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:inference"]["routerHa"] = False
    assert "single prod inference router replica" in _fail(config, "prod")


def test_prod_with_public_network_is_rejected(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:network"]["publicNetworkAccess"] = True
    assert "public network access on in prod" in _fail(config, "prod")


def test_prod_needs_geo_redundant_storage(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:storage"]["sku"] = "Standard_LRS"
    assert "not geo-redundant" in _fail(config, "prod")


def test_prod_needs_premium_acr(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:containerRegistry"] = {"sku": "Standard"}
    message = _fail(config, "prod")
    assert "Premium" in message


def test_router_ha_needs_three_nodes(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:inference"]["routerHa"] = True
    message = _fail(config)
    assert "needs at least 3 nodes" in message
    assert "guarantee only 2" in message


def test_tls_needs_cname_and_secret(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:inference"]["allowInsecureConnections"] = False
    assert "sslCname or sslSecret is empty" in _fail(config)


def test_typo_in_a_key_is_caught_with_a_suggestion(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:aks"]["maxPod"] = config["mlops:aks"].pop("maxPods")
    message = _fail(config)
    assert "mlops:aks.maxPod is not a known setting; did you mean 'maxPods'" in message


def test_unknown_top_level_key(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:trainingg"] = {}
    assert "did you mean 'training'" in _fail(config)


def test_bad_cidr(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:aks"]["authorizedIpRanges"] = ["203.0.113.0/33"]
    assert "not a CIDR range" in _fail(config, "prod")


def test_default_instance_type_must_be_declared(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:inference"]["defaultInstanceType"] = "gpu-large"
    assert "not in instanceTypes" in _fail(config)


def test_secret_expiry_must_be_a_date(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:keyVault"]["secrets"][0]["expiresOn"] = "next year"
    assert "must be a date" in _fail(config)


def test_missing_setting(stack_config) -> None:
    config = stack_config("qa")
    del config["mlops:endpoints"]["batchName"]
    assert "mlops:endpoints.batchName is missing" in _fail(config, "qa")


def test_wrong_type(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:aks"]["maxPods"] = "many"
    assert "must be a whole number" in _fail(config)


def test_max_pods_below_50(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:aks"]["maxPods"] = 30
    assert "mlops:aks.maxPods is 30 but must be between 50 and 250; raise it" in _fail(config)


def test_private_aci_needs_a_private_network(stack_config) -> None:
    config = stack_config("qa")
    config["mlops:aci"]["public"] = False
    assert "no subnet" in _fail(config, "qa")


def test_private_network_needs_premium_acr(stack_config) -> None:
    config = stack_config("qa")
    config["mlops:network"]["privateNetwork"] = True
    assert "Premium" in _fail(config, "qa")


def test_missing_stack_file_lists_known_stacks() -> None:
    with pytest.raises(SettingsError, match=r"use one of: dev, qa, prod"):
        load_stack_settings("staging")


def test_secret_values_are_not_settings(stack_config) -> None:
    config = stack_config("prod")
    config["mlops:scoringApiKey"] = {"secure": "v1:AAAA"}  # ciphertext from `config set --secret`
    settings = settings_from_config(config, "prod")
    assert "scoringApiKey" in settings.secret_config_keys()


@given(
    prefix=st.from_regex(re.compile(r"[a-z][a-z0-9]{1,7}"), fullmatch=True),
    suffix=st.from_regex(re.compile(r"[a-z0-9]{3,6}"), fullmatch=True),
    environment=st.sampled_from(["dev", "qa", "prod"]),
)
def test_every_allowed_prefix_and_suffix_gives_valid_azure_names(
    prefix: str, suffix: str, environment: str
) -> None:
    for kind, name in Names(prefix, environment, suffix).checked():
        assert name_problem(kind, name) is None, (kind, name)


@pytest.mark.parametrize(
    ("kind", "name", "valid"),
    [
        ("storage_account", "stmlopsdev01", True),
        ("storage_account", "st-mlops", False),
        ("storage_account", "a" * 25, False),
        ("key_vault", "kv-mlops-dev-01", True),
        ("key_vault", "kv--double", False),
        ("key_vault", "1kv", False),
        ("container_registry", "crmlops", True),
        ("container_registry", "cr-mlops", False),
        ("ml_compute", "cpu-cluster", True),
        ("ml_compute", "cpu-cluster-", False),
        ("ml_endpoint", "diabetes-prod", True),
        ("k8s_name", "Team-A", False),
    ],
)
def test_naming_rules(kind: str, name: str, valid: bool) -> None:
    assert (name_problem(kind, name) is None) is valid


def test_team_namespaces_get_their_own_compute_targets(stack_config) -> None:
    settings = settings_from_config(stack_config("dev"), "dev")
    assert settings.inference.compute_name_for("mlops-dev") == "aks-inference"
    assert settings.inference.compute_name_for("team-fraud") == "k8s-team-fraud"


def test_team_namespaces_whose_compute_names_collide(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:inference"]["teamNamespaces"] = ["analytics-east", "analytics-eastern"]
    assert "already taken" in _fail(config)


def test_reserved_namespace(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:inference"]["teamNamespaces"] = ["azureml"]
    assert "reserved for the extension" in _fail(config)


# --- rules that had no test, each fed its broken input ---------------------------------


@pytest.mark.parametrize(
    ("stack", "edit", "expected"),
    [
        ("dev", lambda c: c["mlops:network"].update(aksSubnet="10.50.0.0/20"),
         "mlops:network.aksSubnet (10.50.0.0/20) is outside addressSpace (10.40.0.0/16)"),
        ("dev", lambda c: c["mlops:containerRegistry"].update(quarantine="true"),
         "mlops:containerRegistry.quarantine is true on the workspace registry"),
        ("dev", lambda c: c["mlops:inference"].update(instanceTypes=[]),
         "mlops:inference.instanceTypes is empty; declare at least one instance type"),
        ("dev", lambda c: c["mlops:inference"]["instanceTypes"].append(
            dict(c["mlops:inference"]["instanceTypes"][0])),
         "mlops:inference.instanceTypes declares defaultinstancetype twice; rename one"),
        ("dev", lambda c: c["mlops:inference"]["instanceTypes"][0].update(cpuLimit="lots"),
         "mlops:inference.instanceTypes[0].cpuLimit is 'lots', not a quantity like 500m"),
        ("dev", lambda c: c["mlops:inference"]["instanceTypes"][0].update(cpuLimt="1"),
         "instanceTypes[0].cpuLimt is not a known setting; did you mean 'cpuLimit'"),
        ("qa", lambda c: c["mlops:endpoints"].update(batchName=c["mlops:endpoints"]["onlineName"]),
         "mlops:endpoints.batchName equals onlineName; give the endpoints distinct names"),
        ("qa", lambda c: c["mlops:aci"].update(scoringKeySecret="other-key"),
         "mlops:aci.scoringKeySecret names 'other-key', which is not in keyVault.secrets"),
        ("qa", lambda c: c["mlops:aci"].update(cpu="8"),
         "mlops:aci.cpu is 8.0 but must be between 0.1 and 4.0; lower it"),
        ("dev", lambda c: c["mlops:tags"].update({"team/owner": "x"}),
         "mlops:tags.team/owner is not a valid Azure tag"),
        ("dev", lambda c: c["mlops:tags"].update(critical=True),
         "mlops:tags.critical must be a string, not True; quote it"),
        ("dev", lambda c: c["mlops:aks"].update(enabled="maybe"),
         "mlops:aks.enabled must be true or false, not 'maybe'"),
        ("dev", lambda c: c["mlops:aks"].update(enabled=1),
         "mlops:aks.enabled must be true or false, not 1"),
        ("dev", lambda c: c["mlops:aks"]["systemPool"].update(minCount=0),
         "mlops:aks.systemPool.minCount is 0 but must be between 1 and 1000; raise it"),
        ("dev", lambda c: c["mlops:aks"]["systemPool"].update(osDiskType="SSD"),
         "mlops:aks.systemPool.osDiskType is 'SSD' but must be one of Managed, Ephemeral"),
        ("dev", lambda c: c["mlops:aks"].update(systemPool="big"),
         "mlops:aks.systemPool must be an object, not 'big'"),
        ("dev", lambda c: c["mlops:aks"].update(authorizedIpRanges="10.0.0.0/24"),
         "mlops:aks.authorizedIpRanges must be a list, not '10.0.0.0/24'"),
        ("dev", lambda c: c["mlops:aks"].update(adminGroupObjectIds=["admins"]),
         "mlops:aks.adminGroupObjectIds[0] is 'admins', not an object id"),
        ("dev", lambda c: c["mlops:training"].update(maxNodes=2.5),
         "mlops:training.maxNodes must be a whole number, not 2.5"),
        ("dev", lambda c: c["mlops:keyVault"].update(softDeleteRetentionDays=120),
         "mlops:keyVault.softDeleteRetentionDays is 120 but must be between 7 and 90; lower it"),
        ("dev", lambda c: c["mlops:keyVault"]["secrets"][0].update(expiresOn=1700000000),
         "mlops:keyVault.secrets[0].expiresOn must be a date like 2027-12-31"),
        ("dev", lambda c: c["mlops:modelRegistry"].update(replicationLocations=["mars"]),
         "mlops:modelRegistry.replicationLocations[0] is 'mars', which is not an Azure region"),
        ("dev", lambda c: c.update({"mlops:access": {"pipelinePrincipalId": "release"}}),
         "mlops:access.pipelinePrincipalId is 'release', not an object id"),
        ("dev", lambda c: c.update({"mlops:suffix": 12345}),
         "mlops:suffix must be a string, not 12345; quote it"),
        ("dev", lambda c: c.update({"mlops:prefix": "MLOps"}),
         "mlops:prefix is 'MLOps' but must be 2-8 lowercase letters or digits"),
        ("dev", lambda c: c.update({"mlops:environment": "staging"}),
         "mlops:environment is 'staging' but must be one of dev, qa, prod"),
        ("dev", lambda c: c.update({"mlops:key_vault": {}}),
         "mlops:key_vault is not a known setting; did you mean 'keyVault'"),
        ("dev", lambda c: c.update({"mlops:location": "westeurope"}),
         "mlops:location is not a known setting; set azure-native:location instead"),
        ("dev", lambda c: c.pop("azure-native:location"),
         "azure-native:location is missing; add it"),
        ("dev", lambda c: c.pop("mlops:aks"), "mlops:aks is missing; add it"),
        ("qa", lambda c: c["mlops:network"].update(publicNetworkAccess=False),
         "mlops:network disables public access without a private network"),
    ],
)  # fmt: skip
def test_each_rule_refuses_its_broken_input(stack_config, stack, edit, expected) -> None:
    config = stack_config(stack)
    edit(config)
    assert expected in _fail(config, stack)


def test_null_means_the_default(stack_config) -> None:
    config = stack_config("dev")
    config["mlops:aks"]["maxPods"] = None  # `maxPods:` with no value in YAML
    config["mlops:loop"] = {"devopsOrganization": ""}
    settings = settings_from_config(config, "dev")
    assert settings.aks.max_pods == 50
    assert settings.loop.devops_organization is None


def test_model_registry_defaults_to_the_stack_region_and_shared_group(stack_config) -> None:
    config = stack_config("qa")
    config["azure-native:location"] = "North Europe"
    config["mlops:modelRegistry"].pop("location", None)
    config["mlops:modelRegistry"].pop("resourceGroup", None)
    registry = settings_from_config(config, "qa").model_registry
    assert (registry.location, registry.resource_group) == ("northeurope", "rg-mlops-shared")


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [leaf for key, item in value.items() for leaf in _leaves(item, (*path, key))]
    if isinstance(value, list) and value:
        return [leaf for i, item in enumerate(value) for leaf in _leaves(item, (*path, i))]
    return [path]


PYDANTIC_WORDING = ("Input should", "validation error", "pydantic", "Field required", "[type=")


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_raw_pydantic_text_reaches_the_user(stack_config, stack: str) -> None:
    """Every setting replaced by each kind of wrong value: one sentence of ours, naming it."""
    leaves = [leaf for leaf in _leaves(stack_config(stack)) if str(leaf[0]).startswith("mlops:")]
    junk: list[Any] = [{"a": 1}, [1], "x", -5, 2.5, True]
    refused = 0
    for leaf in leaves:
        for value in junk:
            config = stack_config(stack)
            target = config
            for part in leaf[:-1]:
                target = target[part]
            target[leaf[-1]] = value
            try:
                settings_from_config(config, stack)
            except SettingsError as error:
                message = str(error)
                refused += 1
                assert message.startswith(("mlops:", "azure-native:")), message
                assert "\n" not in message and message.endswith(f"in Pulumi.{stack}.yaml.")
                assert not any(words in message for words in PYDANTIC_WORDING), message
    assert refused > 3 * len(leaves)  # most replacements are wrong for most settings


def test_the_settings_reference_lists_every_key(project_root) -> None:
    from pydantic import BaseModel

    from infra.settings import Settings

    docs = (project_root / "docs" / "infrastructure.md").read_text()
    rows = {
        line.split("|")[1].strip(): line for line in docs.splitlines() if line.startswith("| `")
    }
    for name, info in Settings.model_fields.items():
        if name in ("stack", "source", "location"):
            continue  # supplied by the loader; the region is azure-native:location
        key = f"mlops:{info.alias}"
        row = next((line for cell, line in rows.items() if f"`{key}`" in cell), None)
        assert row is not None, key
        section = info.annotation
        if isinstance(section, type) and issubclass(section, BaseModel):
            for sub in section.model_fields.values():
                assert str(sub.alias) in row, f"{key}.{sub.alias}"
