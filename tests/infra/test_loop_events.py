"""The closed loop's Event Grid topics and subscriptions, recorded under Pulumi mocks."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from infra.components.loop_events import (
    BLOB_CREATED,
    MONITOR_BREACH_TAG,
    MONITOR_BREACH_TEXT,
    RUN_STATUS_CHANGED,
    retrain_webhook_url,
)
from infra.settings import SettingsError, settings_from_config
from infra.tooling.recording import RecordedStack, record_stack

TOPIC = "azure-native:eventgrid:SystemTopic"
SUBSCRIPTION = "azure-native:eventgrid:SystemTopicEventSubscription"


@pytest.fixture(scope="module")
def looped() -> RecordedStack:
    from infra.settings import read_stack_config

    raw = dict(read_stack_config("prod"))
    raw["mlops:loop"] = {"devopsOrganization": "contoso"}
    return record_stack("prod", raw)


def test_off_until_an_organization_is_set(recorded: RecordedStack) -> None:
    assert recorded.of_type(TOPIC) == [] and recorded.of_type(SUBSCRIPTION) == []


def test_topics_on_the_workspace_and_the_storage_account(looped: RecordedStack) -> None:
    topics = {t.inputs["topicType"]: t for t in looped.of_type(TOPIC)}
    assert set(topics) == {
        "Microsoft.MachineLearningServices.Workspaces",
        "Microsoft.Storage.StorageAccounts",
    }
    [workspace] = looped.of_type("azure-native:machinelearningservices:Workspace")
    [storage] = [
        s
        for s in looped.of_type("azure-native:storage:StorageAccount")
        if s.inputs["accountName"] == looped.settings.names.storage_account
    ]
    assert (
        topics["Microsoft.MachineLearningServices.Workspaces"].inputs["source"]
        == workspace.outputs["id"]
    )
    assert topics["Microsoft.Storage.StorageAccounts"].inputs["source"] == storage.outputs["id"]
    for topic in topics.values():
        assert topic.inputs["tags"] == looped.settings.all_tags


def subscriptions(looped: RecordedStack) -> dict[str, dict[str, Any]]:
    return {s.inputs["eventSubscriptionName"]: s.inputs for s in looped.of_type(SUBSCRIPTION)}


def test_a_monitor_breach_reaches_the_retrain_webhook(looped: RecordedStack) -> None:
    breach = subscriptions(looped)["workspace-retrain"]
    assert breach["destination"]["endpointType"] == "WebHook"
    assert breach["destination"]["endpointUrl"] == retrain_webhook_url("contoso")
    assert breach["eventDeliverySchema"] == "EventGridSchema"
    assert breach["filter"]["includedEventTypes"] == [RUN_STATUS_CHANGED]
    assert breach["filter"]["advancedFilters"] == [
        {"operatorType": "StringContains", "key": MONITOR_BREACH_TAG,
         "values": [MONITOR_BREACH_TEXT]}
    ]  # fmt: skip


def test_a_complete_training_data_set_reaches_it_too(looped: RecordedStack) -> None:
    data = subscriptions(looped)["storage-retrain"]
    assert data["destination"]["endpointUrl"] == retrain_webhook_url("contoso")
    assert data["filter"]["includedEventTypes"] == [BLOB_CREATED]
    assert data["filter"]["subjectEndsWith"] == "/lineage.json"
    assert data["filter"]["advancedFilters"][0]["values"] == ["/blobs/training-data/"]


def test_the_url_is_azure_devops_incoming_webhook_form() -> None:
    assert retrain_webhook_url("contoso") == (
        "https://dev.azure.com/contoso/_apis/public/distributedtask/webhooks/mlopsRetrainEvents"
        "?api-version=6.0-preview"
    )


def test_a_bad_organization_is_refused(stack_config: Callable[[str], dict[str, Any]]) -> None:
    raw = stack_config("dev")
    raw["mlops:loop"] = {"devopsOrganization": "https://dev.azure.com/contoso"}
    with pytest.raises(SettingsError, match="devopsOrganization"):
        settings_from_config(raw, "dev")
