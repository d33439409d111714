"""`mlops event`: what the retrain pipeline makes of the Event Grid event that started it
(`resources.webhooks` in retrain.azure-pipelines.yml hands the payload over as JSON in
RETRAIN_EVENT).

- `Microsoft.EventGrid.SubscriptionValidationEvent`: Azure DevOps' incoming webhook cannot echo
  the validation code, so the run completes the handshake the manual way Event Grid offers, a GET
  of `data.validationUrl` (Learn, "event-grid/webhook-event-delivery", "Validation details"),
  and trains nothing.
- `Microsoft.Storage.BlobCreated` on `training-data/<name>/<version>/lineage.json` (the file that
  completes a data set version): train on the data asset `azureml:<name>:<version>`.
- `Microsoft.MachineLearningServices.RunStatusChanged` carrying the monitor's
  `azureml_modelmonitor_threshold_breached` run tag: retrain on the configured data.
- No event (a scheduled or manual run): nothing to change.
The decision is pure (`decide`); `main` prints Azure DevOps logging commands for it.
"""

from __future__ import annotations

import json
import os
import urllib.request
from dataclasses import dataclass
from typing import Any

from pipelines.datastore.datasets import DataSetRef, parse_ref

VALIDATION = "Microsoft.EventGrid.SubscriptionValidationEvent"
BLOB_CREATED = "Microsoft.Storage.BlobCreated"
RUN_STATUS_CHANGED = "Microsoft.MachineLearningServices.RunStatusChanged"
BREACH_TAG = "azureml_modelmonitor_threshold_breached"


@dataclass(frozen=True)
class Decision:
    """What the run does: train (on `data` if set), or only validate a subscription."""

    train: bool
    reason: str
    data: str | None = None
    validation_url: str | None = None


def _events(payload: Any) -> list[dict[str, Any]]:
    """Event Grid posts a JSON array of events; a single object is taken as one event."""
    if isinstance(payload, dict):
        return [payload]
    if isinstance(payload, list):
        return [event for event in payload if isinstance(event, dict)]
    return []


def data_set_of_blob(subject: str) -> DataSetRef | None:
    """`/blobServices/default/containers/<c>/blobs/training-data/<name>/<n>/lineage.json` → ref."""
    _, _, path = subject.partition("/blobs/")
    parts = path.split("/")
    if len(parts) != 4 or parts[0] != "training-data" or parts[3] != "lineage.json":
        return None
    return parse_ref(f"{parts[1]}:{parts[2]}")


def decide(payload: Any) -> Decision:
    """The run's course for the payload (None or empty: a scheduled or manual run)."""
    events = _events(payload)
    if not events:
        return Decision(True, "no event: a scheduled or manual run")
    event = events[-1]
    kind = str(event.get("eventType") or event.get("type") or "")
    raw_data = event.get("data")
    data: dict[str, Any] = raw_data if isinstance(raw_data, dict) else {}
    if kind == VALIDATION:
        return Decision(False, "Event Grid subscription validation", None,
                        str(data.get("validationUrl") or "") or None)  # fmt: skip
    if kind == BLOB_CREATED:
        ref = data_set_of_blob(str(event.get("subject", "")))
        if ref is None:
            return Decision(False, f"ignored: {event.get('subject')} is not a data set version")
        return Decision(True, f"new training data set {ref}", f"azureml:{ref}")
    if kind == RUN_STATUS_CHANGED:
        tags = data.get("runTags") or data.get("RunTags") or {}
        if isinstance(tags, dict) and tags.get(BREACH_TAG):
            return Decision(True, f"model monitor breach: {str(tags[BREACH_TAG])[:200]}")
        return Decision(False, "ignored: a run status change without a monitor breach")
    return Decision(False, f"ignored: event type {kind or '(none)'}")


def main() -> int:
    """Print the decision as Azure DevOps logging commands; validate a subscription if asked."""
    raw = os.environ.get("RETRAIN_EVENT", "").strip()
    try:
        payload = json.loads(raw) if raw and raw != "null" else None
    except ValueError:
        print(f"##vso[task.logissue type=error]RETRAIN_EVENT is not JSON: {raw[:200]}")
        return 1
    decision = decide(payload)
    print(f"Retrain: {decision.reason}")
    if decision.validation_url:
        if not decision.validation_url.startswith("https://"):
            print("##vso[task.logissue type=error]the validation URL is not https; not called")
            return 1
        with urllib.request.urlopen(decision.validation_url, timeout=30) as response:  # noqa: S310
            print(f"Event Grid subscription validated (HTTP {response.status})")
    if decision.data:
        print(f"##vso[task.setvariable variable=trainingData;isOutput=true]{decision.data}")
    retrain = "true" if decision.train else "false"
    print(f"##vso[task.setvariable variable=retrain;isOutput=true]{retrain}")
    return 0
