"""Registry round trip on a temporary store: lineage tags, checksums, the gate's veto."""

import json
from pathlib import Path

import pytest

from pipelines.errors import MlopsError
from pipelines.gate import GateConfig
from pipelines.registry import TAG_DIGEST
from pipelines.steps import Tracking, evaluate, register, train
from scoring.model_bundle import verify_bundle
from training.model import TrainingConfig


def train_and_gate(tracking: Tracking, **params: float) -> str:
    outcome = train(tracking, TrainingConfig(params), None)
    evaluate(tracking, outcome.run_id, GateConfig())
    return outcome.run_id


def stored_bundle(state_dir: Path, run_id: str) -> Path:
    matches = list((state_dir / "mlartifacts").glob(f"{run_id}/artifacts/model"))
    assert len(matches) == 1
    return matches[0]


def test_register_load_verify_round_trip(tracking: Tracking, tmp_path: Path) -> None:
    run_id = train_and_gate(tracking)
    version = register(tracking, run_id)
    for tag in (
        "model_sha256",
        "run_id",
        "data_sha256",
        "git_commit",
        "golden_sha256",
        "metric.rmse",
        "metric.mae",
        "metric.r2",
        "gate.decision",
        "serving_path",
        "model_spec",
    ):
        assert version.tags.get(tag), tag
    assert version.tags["gate.decision"] == "passed"
    assert (version.tags["serving_path"], version.tags["model_spec"]) == ("numpy", "diabetes")
    local = tracking.registry.download(version, tmp_path / "dl")
    assert verify_bundle(local) == version.digest
    # The golden sample is a file of the bundle, covered by the manifest; the tag is its digest.
    manifest = json.loads((local / "manifest.json").read_text())
    assert manifest["files"]["golden.json"] == version.tags["golden_sha256"]
    golden = tracking.registry.golden(version)
    assert len(golden["rows"]) == len(golden["predictions"]) == 5


def test_tampered_artifact_is_a_clear_error(
    tracking: Tracking, state_dir: Path, tmp_path: Path
) -> None:
    run_id = train_and_gate(tracking)
    version = register(tracking, run_id)
    fast = stored_bundle(state_dir, run_id) / "fast_path.json"
    spec = json.loads(fast.read_text())
    spec["intercept"] += 1
    fast.write_text(json.dumps(spec))
    with pytest.raises(
        MlopsError, match=r"diabetes-ridge:1 failed its integrity check .*fast_path"
    ) as raised:
        tracking.registry.download(version, tmp_path / "dl")
    # The download folder may be temporary: the message names the file, not the folder.
    assert str(tmp_path) not in str(raised.value)
    assert "fast_path.json in the bundle does not match" in str(raised.value)


def test_rejected_candidate_is_never_registered(tracking: Tracking) -> None:
    first = register(tracking, train_and_gate(tracking))
    tracking.registry.set_production(first)
    rejected = train_and_gate(tracking, alpha=1000.0)
    assert tracking.client.get_run(rejected).data.tags["gate.decision"] == "rejected"
    with pytest.raises(MlopsError, match="rejected by the gate"):
        register(tracking, rejected)
    assert [v.version for v in tracking.registry.versions()] == ["1"]
    assert tracking.registry.production().version == "1"


def test_registration_needs_a_gate_decision(tracking: Tracking) -> None:
    outcome = train(tracking, TrainingConfig(), None)
    with pytest.raises(MlopsError, match="has not been through the gate"):
        register(tracking, outcome.run_id)
    assert tracking.registry.versions() == []


def test_run_registers_once(tracking: Tracking) -> None:
    run_id = train_and_gate(tracking)
    register(tracking, run_id)
    with pytest.raises(MlopsError, match="already registered"):
        register(tracking, run_id)


def test_gate_errors_when_production_cannot_be_loaded(tracking: Tracking, state_dir: Path) -> None:
    first_run = train_and_gate(tracking)
    tracking.registry.set_production(register(tracking, first_run))
    (stored_bundle(state_dir, first_run) / "model.pkl").write_bytes(b"tampered")
    candidate = train(tracking, TrainingConfig({"alpha": 0.1}), None)
    with pytest.raises(MlopsError, match="failed its integrity check"):
        evaluate(tracking, candidate.run_id, GateConfig())
    assert "gate.decision" not in tracking.client.get_run(candidate.run_id).data.tags


def test_gate_scores_production_on_the_candidates_holdout(tracking: Tracking) -> None:
    tracking.registry.set_production(register(tracking, train_and_gate(tracking)))
    candidate = train(tracking, TrainingConfig({"alpha": 0.1}), None)
    _, decision = evaluate(tracking, candidate.run_id, GateConfig())
    assert decision.reference_kind == "production"
    assert decision.reference_version == "1"
    assert decision.candidate_score == pytest.approx(candidate.metrics["rmse"])
    # alpha 0.1 beats the default 0.5 on this split
    assert decision.passed and decision.improvement > 0


def test_references(tracking: Tracking) -> None:
    version = register(tracking, train_and_gate(tracking))
    tracking.registry.set_production(version)
    for reference in (
        "diabetes-ridge@production",
        "diabetes-ridge:1",
        "diabetes-ridge/1",
        "1",
        "production",
    ):
        assert tracking.registry.get(reference).version == "1"
    with pytest.raises(MlopsError, match="no version '7'"):
        tracking.registry.get("diabetes-ridge:7")
    with pytest.raises(MlopsError, match="no alias 'staging'"):
        tracking.registry.get("diabetes-ridge@staging")
    with pytest.raises(MlopsError, match="names the model but no version"):
        tracking.registry.get("diabetes-ridge")
    with pytest.raises(MlopsError, match="not a model reference"):
        tracking.registry.get("a b")


def test_digest_tag_is_required_to_download(tracking: Tracking, tmp_path: Path) -> None:
    version = register(tracking, train_and_gate(tracking))
    tracking.client.delete_model_version_tag(version.name, version.version, TAG_DIGEST)
    with pytest.raises(MlopsError, match="no recorded sha256"):
        tracking.registry.download(tracking.registry.get("diabetes-ridge:1"), tmp_path / "dl")
