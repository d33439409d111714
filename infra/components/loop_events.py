"""The closed loop's Event Grid wiring: Azure events that start the retrain pipeline.

Two system topics, each with one subscription delivering to the Azure DevOps incoming webhook of
the retrain pipeline (infra/devops/program.py, RetrainWebhook):
- the workspace's topic (`Microsoft.MachineLearningServices.Workspaces`): a model monitor run
  that breaches a threshold. Azure ML has no dedicated event for it: the run tags itself
  `azureml_modelmonitor_threshold_breached` and Event Grid publishes `RunStatusChanged`; the
  subscription filters on that tag (Learn, "how-to-monitor-model-performance", "Integrate Azure
  Machine Learning model monitoring with Azure Event Grid"; the tag's text is set by
  Azure/azureml-assets `model_monitor_evaluate_metrics_threshold/evaluate_metrics_threshold.py`);
- the storage account's topic (`Microsoft.Storage.StorageAccounts`): `BlobCreated` of the
  `lineage.json` that completes a training data set version under `training-data/`
  (pipelines/datastore/datasets.py).
Event Grid requires a webhook to prove ownership (Learn, "event-grid/webhook-event-delivery"):
Azure DevOps cannot echo the validation code, so the retrain pipeline's `mlops event` step GETs
the validation URL the first event carries (pipelines/monitoring/events.py).
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi_azure_native import eventgrid

from infra.components.common import child
from infra.settings import Settings

# The incoming webhook's name (the URL's last path segment) and its service connection.
RETRAIN_WEBHOOK = "mlopsRetrainEvents"
RETRAIN_WEBHOOK_CONNECTION = "mlops-retrain-events"
MONITOR_BREACH_TAG = "data.RunTags.azureml_modelmonitor_threshold_breached"
MONITOR_BREACH_TEXT = "has failed due to one or more features violating metric thresholds"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
TRAINING_DATA_BLOBS = "/blobs/training-data/"
DATA_SET_COMPLETE = "/lineage.json"


def retrain_webhook_url(organization: str) -> str:
    """Where Event Grid delivers (MicrosoftDocs azure-devops-docs, pipelines/process/resources.md,
    "Webhook triggers")."""
    return (
        f"https://dev.azure.com/{organization}/_apis/public/distributedtask/webhooks/"
        f"{RETRAIN_WEBHOOK}?api-version=6.0-preview"
    )


def contains(key: str, text: str) -> eventgrid.StringContainsAdvancedFilterArgs:
    """An advanced filter: the event's `key` contains `text`."""
    return eventgrid.StringContainsAdvancedFilterArgs(
        operator_type="StringContains", key=key, values=[text]
    )


class LoopEvents(pulumi.ComponentResource):
    """System topics on the workspace and the storage account, subscribed for the retrain."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        workspace_id: pulumi.Input[str],
        storage_id: pulumi.Input[str],
        webhook_url: str,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:loop:LoopEvents", name, None, opts)
        names = settings.names
        tags = settings.all_tags
        destination = eventgrid.WebHookEventSubscriptionDestinationArgs(
            endpoint_type="WebHook", endpoint_url=webhook_url, max_events_per_batch=1
        )
        retry = eventgrid.RetryPolicyArgs(
            max_delivery_attempts=10, event_time_to_live_in_minutes=1440
        )

        def route(
            label: str, topic_type: str, source: pulumi.Input[str], event_filter: Any
        ) -> tuple[eventgrid.SystemTopic, eventgrid.SystemTopicEventSubscription]:
            short = "ws" if label == "workspace" else "st"
            topic = eventgrid.SystemTopic(
                f"{label}-events",
                system_topic_name=f"evgt-{short}-{names.prefix}-{names.environment}",
                resource_group_name=resource_group_name,
                location=settings.location,
                source=source,
                topic_type=topic_type,
                tags=tags,
                opts=child(self),
            )
            subscription = eventgrid.SystemTopicEventSubscription(
                f"{label}-retrain",
                event_subscription_name=f"{label}-retrain",
                resource_group_name=resource_group_name,
                system_topic_name=topic.name,
                destination=destination,
                event_delivery_schema="EventGridSchema",
                filter=event_filter,
                retry_policy=retry,
                opts=child(self),
            )
            return topic, subscription

        self.workspace_topic, self.monitor_breach = route(
            "workspace",
            "Microsoft.MachineLearningServices.Workspaces",
            workspace_id,
            eventgrid.EventSubscriptionFilterArgs(
                included_event_types=[RUN_STATUS_CHANGED],
                advanced_filters=[contains(MONITOR_BREACH_TAG, MONITOR_BREACH_TEXT)],
            ),
        )
        self.storage_topic, self.new_training_data = route(
            "storage",
            "Microsoft.Storage.StorageAccounts",
            storage_id,
            eventgrid.EventSubscriptionFilterArgs(
                included_event_types=[BLOB_CREATED],
                subject_ends_with=DATA_SET_COMPLETE,
                advanced_filters=[contains("subject", TRAINING_DATA_BLOBS)],
            ),
        )
        self.register_outputs(
            {
                "workspace_topic": self.workspace_topic.name,
                "storage_topic": self.storage_topic.name,
            }
        )
