"""What the retrain pipeline makes of the Event Grid event that started it."""

from __future__ import annotations

import pytest

from pipelines.monitoring.events import decide, main

BLOB = "/blobServices/default/containers/azureml-blobstore-1/blobs/"


def test_no_event_is_a_scheduled_or_manual_run() -> None:
    assert decide(None).train and decide([]).train and decide(None).data is None


def test_validation_event_validates_and_trains_nothing() -> None:
    event = {
        "eventType": "Microsoft.EventGrid.SubscriptionValidationEvent",
        "data": {"validationCode": "x", "validationUrl": "https://eg/validate"},
    }
    decision = decide([event])
    assert not decision.train and decision.validation_url == "https://eg/validate"


def test_a_new_data_set_version_is_trained_on_as_its_data_asset() -> None:
    event = {"eventType": "Microsoft.Storage.BlobCreated",
             "subject": BLOB + "training-data/diabetes-feedback/3/lineage.json"}  # fmt: skip
    decision = decide([event])
    assert decision.train and decision.data == "azureml:diabetes-feedback:3"
    for subject in ("training-data/diabetes-feedback/3/data.csv", "modelDataCollector/x.jsonl"):
        assert not decide([{**event, "subject": BLOB + subject}]).train


def test_only_a_monitor_breach_retrains_on_a_run_status_change() -> None:
    breach = {"eventType": "Microsoft.MachineLearningServices.RunStatusChanged",
              "data": {"runStatus": "Failed", "runTags": {
                  "azureml_modelmonitor_threshold_breached":
                  "The signal 'production-drift-data-drift' has failed due to one or more "
                  "features violating metric thresholds."}}}  # fmt: skip
    assert decide([breach]).train and "production-drift-data-drift" in decide([breach]).reason
    ordinary = {**breach, "data": {"runStatus": "Failed", "runTags": {}}}
    assert not decide([ordinary]).train
    assert not decide([{"eventType": "Something.Else"}]).train


def test_main_prints_logging_commands(monkeypatch: pytest.MonkeyPatch, capsys, mlops) -> None:
    monkeypatch.setenv(
        "RETRAIN_EVENT",
        '[{"eventType":"Microsoft.Storage.BlobCreated","subject":"'
        + BLOB
        + 'training-data/diabetes-feedback/2/lineage.json"}]',
    )
    assert main() == 0
    out = capsys.readouterr().out
    assert (
        "##vso[task.setvariable variable=trainingData;isOutput=true]azureml:diabetes-feedback:2"
        in out
    )
    assert "##vso[task.setvariable variable=retrain;isOutput=true]true" in out
    monkeypatch.setenv("RETRAIN_EVENT", "{not json")
    assert main() == 1
    code, out = mlops("event")  # the command the pipeline runs
    assert code == 1 and "RETRAIN_EVENT is not JSON" in out


def test_the_retrain_pipeline_is_started_by_the_webhook_not_by_data_commits() -> None:
    from infra.devops.program import RETRAIN_WEBHOOK_CONNECTION
    from tests.devops import pipeline_files as pf

    tree = pf.load(pf.PIPELINES_DIR / "retrain.azure-pipelines.yml")
    assert tree["trigger"] == "none"  # no data/* path trigger: new data is an event
    [webhook] = tree["resources"]["webhooks"]
    assert webhook["connection"] == RETRAIN_WEBHOOK_CONNECTION
    event, retrain = tree["jobs"]
    [step] = [s for s in event["steps"] if s.get("name") == "decide"]
    assert step["script"] == "mlops event"
    assert f"parameters.{webhook['webhook']}" in step["env"]["RETRAIN_EVENT"]
    assert retrain["dependsOn"] == "Event"
    assert "dependencies.Event.outputs['decide.retrain']" in retrain["condition"]
