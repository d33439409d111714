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
    assert "must be at least 50" in _fail(config)


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
