"""A retrain of the production model (same data, parameters and code) is never registered twice.

The gate ties such a candidate with production, and a tie passes by design; the lineage the
registry records (data fingerprint, the training run's parameters, the commit) says it is the
same model, so `evaluate` rejects it and `register` refuses it.
"""

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from pipelines import steps
from pipelines.errors import MlopsError
from pipelines.gate import GateConfig, is_identical
from pipelines.registry import RegisteredVersion
from pipelines.steps import Tracking, evaluate, git_commit, register, train
from tests.bundles import diabetes_data as bundled_diabetes
from training.model import TrainingConfig

TUNED = TrainingConfig({"alpha": 0.1})
IDENTICAL_TO_V1 = (
    "identical to production model diabetes-ridge:1: same data, parameters and code; "
    "nothing to register"
)


@pytest.fixture
def pin_commit(monkeypatch: pytest.MonkeyPatch) -> Callable[[str], None]:
    """Pin the commit the runs record (as CI's BUILD_SOURCEVERSION would), whatever git says."""
    monkeypatch.delenv("BUILD_SOURCEVERSION", raising=False)

    def pin(commit: str) -> None:
        monkeypatch.setenv("GIT_COMMIT", commit)

    pin("a" * 40)
    return pin


def production_v1(tracking: Tracking) -> RegisteredVersion:
    run_id = train(tracking, TUNED, None).run_id
    evaluate(tracking, run_id, GateConfig())
    version = register(tracking, run_id)
    tracking.registry.set_production(version)
    return version


def test_retraining_the_production_model_is_rejected_before_registration(
    tracking: Tracking, pin_commit: Callable[[str], None]
) -> None:
    production_v1(tracking)
    run_id = train(tracking, TUNED, None).run_id
    # Even a gate that tolerates a worse model does not let the same model in twice.
    _, decision = evaluate(tracking, run_id, GateConfig(min_improvement=-100))
    assert decision.improvement == 0  # a tie, which the gate alone would pass
    assert not decision.passed
    assert is_identical(decision)
    assert decision.reason == IDENTICAL_TO_V1
    run = tracking.client.get_run(run_id)
    assert run.data.tags["gate.decision"] == "rejected"
    assert run.data.tags["gate.reason"] == IDENTICAL_TO_V1
    with pytest.raises(MlopsError, match="was rejected by the gate"):
        register(tracking, run_id)
    assert [v.version for v in tracking.registry.versions()] == ["1"]


def test_the_same_data_read_from_a_file_is_the_same_data(
    tracking: Tracking, pin_commit: Callable[[str], None], tmp_path: Path
) -> None:
    production_v1(tracking)
    path = tmp_path / "diabetes.parquet"
    bundled_diabetes().to_parquet(path)  # another data_source, the same fingerprint
    run_id = train(tracking, TUNED, path).run_id
    _, decision = evaluate(tracking, run_id, GateConfig())
    assert is_identical(decision) and decision.reason == IDENTICAL_TO_V1


@pytest.mark.parametrize("change", ["commit", "unknown-commit", "parameters", "data"])
def test_a_candidate_that_differs_in_any_lineage_is_gated_on_its_score(
    tracking: Tracking, pin_commit: Callable[[str], None], tmp_path: Path, change: str
) -> None:
    production_v1(tracking)
    config, data = TUNED, None
    if change == "commit":
        pin_commit("b" * 40)
    elif change == "unknown-commit":
        pin_commit("unknown")  # no git: the code cannot be compared, so never identical
    elif change == "parameters":
        config = TrainingConfig({"alpha": 0.1}, golden_rows=6)  # the same fit, other parameters
    else:
        data = tmp_path / "subset.parquet"
        bundled_diabetes().sample(frac=0.9, random_state=3).to_parquet(data)
    run_id = train(tracking, config, data).run_id
    _, decision = evaluate(tracking, run_id, GateConfig(min_improvement=-1e9))
    assert not is_identical(decision)
    assert decision.passed
    assert register(tracking, run_id).version == "2"


def test_unreadable_production_parameters_are_never_identical(
    tracking: Tracking, pin_commit: Callable[[str], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    v1 = production_v1(tracking)
    run_id = train(tracking, TUNED, None).run_id
    original = tracking.client.get_run

    def get_run(wanted: str):  # the production run lives in another workspace, say
        if wanted == v1.run_id:
            raise MlflowException(f"run {wanted} not found")
        return original(wanted)

    monkeypatch.setattr(tracking.client, "get_run", get_run)
    _, decision = evaluate(tracking, run_id, GateConfig())
    assert not is_identical(decision)
    assert decision.passed  # a tie passes at min_improvement 0


def test_register_refuses_a_run_identical_to_production_even_after_it_passed(
    tracking: Tracking, pin_commit: Callable[[str], None]
) -> None:
    # Both pass against the baseline; then one is registered and promoted.
    first, second = (train(tracking, TUNED, None).run_id for _ in range(2))
    for run_id in (first, second):
        assert evaluate(tracking, run_id, GateConfig())[1].passed
    tracking.registry.set_production(register(tracking, first))
    with pytest.raises(MlopsError, match=f"run {second} is {IDENTICAL_TO_V1}"):
        register(tracking, second)
    assert len(tracking.registry.versions()) == 1


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, capture_output=True, text=True, check=True
    ).stdout.strip()


def test_git_commit_pins_uncommitted_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for variable in ("BUILD_SOURCEVERSION", "GIT_COMMIT"):
        monkeypatch.delenv(variable, raising=False)
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "--quiet")
    (repo / "train.py").write_text("alpha = 0.5\n")
    _git(repo, "add", "train.py")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "one")
    sha = _git(repo, "rev-parse", "HEAD")
    monkeypatch.setattr(steps, "PROJECT_ROOT", repo)

    assert git_commit() == sha
    (repo / "train.py").write_text("alpha = 0.1\n")
    dirty = git_commit()
    assert dirty.startswith(f"{sha}-dirty.") and len(dirty) == len(sha) + len("-dirty.") + 12
    assert git_commit() == dirty  # the same changes, the same tag
    (repo / "notes.txt").write_text("untracked files are not code under git\n")
    assert git_commit() == dirty
    (repo / "train.py").write_text("alpha = 0.2\n")
    assert git_commit() not in (sha, dirty)
    (repo / "train.py").write_text("alpha = 0.5\n")
    assert git_commit() == sha

    outside = tmp_path / "no-git"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(steps, "PROJECT_ROOT", outside)
    assert git_commit() == "unknown"
