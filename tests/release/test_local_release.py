"""The local release on real inference servers, with faults injected at every stage.

One module-wide store holds v1 (released: prod/blue) and v2 (registered). Each test starts from
"v1 serves production" and must leave it so: that is the property under test.
"""

import json
import os
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines.console import mlops_command
from pipelines.errors import MlopsError
from pipelines.gate import GateConfig
from pipelines.lifecycle import invoke_example, run_release
from pipelines.registry import ModelRegistry, RegisteredVersion
from pipelines.release.plan import PROD_ENDPOINT, QA_ENDPOINT
from pipelines.release.runner import REPORT_FILE, ReleaseError, release
from pipelines.release.smoke import smoke_test
from pipelines.settings import load_settings
from pipelines.steps import Tracking, evaluate, register, train
from pipelines.targets.local import LocalTarget, process_alive
from tests.test_printed_commands import no_uv_path
from training.model import TrainingConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]


class Store:
    def __init__(self, tracking: Tracking, v1: RegisteredVersion, v2: RegisteredVersion) -> None:
        self.tracking, self.v1, self.v2 = tracking, v1, v2
        self.registry = tracking.registry

    def target(self, cls: type[LocalTarget] = LocalTarget) -> LocalTarget:
        return cls(self.tracking.settings, self.registry)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    state = tmp_path_factory.mktemp("release") / "state"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLOPS_STATE_DIR", str(state))
        patch.delenv("MLOPS_TRACKING_URI", raising=False)
        tracking = Tracking(load_settings())
        versions = []
        for alpha in (0.5, 0.1):
            run_id = train(tracking, TrainingConfig({"alpha": alpha}), None).run_id
            evaluate(tracking, run_id, GateConfig(min_improvement=-1e9))
            versions.append(register(tracking, run_id))
        result = Store(tracking, *versions)
        try:  # a failed setup must not leave servers behind either
            release(result.target(), result.registry, result.v1)
            yield result
        finally:
            result.target().teardown()


def assert_v1_serves_production(store: Store) -> None:
    target = store.target()
    assert store.registry.production().version == "1"
    record = target.endpoint(PROD_ENDPOINT)
    assert record.traffic == {"blue": 100}
    assert set(record.deployments) == {"blue"}
    assert record.deployments["blue"].version == "1"
    assert process_alive(record.deployments["blue"].pid)
    report = smoke_test("prod", target.client(PROD_ENDPOINT), store.registry.golden(store.v1))
    assert report.passed, report.to_dict()


def test_first_release_put_v1_in_production(store: Store) -> None:
    assert_v1_serves_production(store)
    qa = store.target().endpoint(QA_ENDPOINT)
    assert qa.deployments["qa"].version == "1"
    state_file = store.tracking.settings.deployments_dir / "prod.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"  # it holds the endpoint key


class WrongGoldenRegistry(ModelRegistry):
    """The store's registry, expecting predictions the models do not make: smoke tests fail."""

    def golden(self, version: RegisteredVersion) -> dict[str, Any]:
        wrong = super().golden(version)
        wrong["predictions"] = [value + 1.0 for value in wrong["predictions"]]
        return wrong


def wrong_golden_target(store: Store) -> LocalTarget:
    registry = WrongGoldenRegistry(store.registry.tracking_uri, store.registry.model_name)
    return LocalTarget(store.tracking.settings, registry)


def test_qa_smoke_failure_leaves_production_untouched(store: Store) -> None:
    target = wrong_golden_target(store)
    with pytest.raises(ReleaseError, match="smoke test of qa failed its golden check"):
        release(target, target.registry, store.v2)
    assert_v1_serves_production(store)


PREVIOUS_REPORT = {"version": "diabetes-ridge:1", "outcome": "succeeded", "steps": ["…"]}


def release_with_report(
    store: Store, target: LocalTarget, version: RegisteredVersion, folder: Path
):
    """`mlops release` as the CLI runs it, over a previous successful release's report."""
    folder.mkdir()
    (folder / REPORT_FILE).write_text(json.dumps(PREVIOUS_REPORT))
    with pytest.raises(ReleaseError) as failure:
        run_release(store.tracking.settings, target, version, folder)
    assert failure.value.exit_code == 2  # the error propagates as it always did
    assert sorted(p.name for p in folder.iterdir()) == [REPORT_FILE]  # no temporary left over
    report = json.loads((folder / REPORT_FILE).read_text())
    assert report != PREVIOUS_REPORT
    assert report["version"] == version.ref
    assert report["error"] == str(failure.value)
    return report


def test_a_failed_qa_release_writes_its_report(store: Store, tmp_path: Path) -> None:
    report = release_with_report(store, wrong_golden_target(store), store.v2, tmp_path / "reports")
    assert report["outcome"] == "failed"  # QA has nothing to roll back to
    assert report["failed_step"] == "smoke test endpoint qa"
    assert "smoke test of qa failed its golden check" in report["error"]
    [qa] = report["smoke_tests"]
    assert qa["target"] == "qa" and qa["passed"] is False
    assert {c["name"]: c["passed"] for c in qa["checks"]}["golden"] is False
    assert report["steps"] == ["deploy qa/qa", "traffic on qa: qa 100%"]
    assert_v1_serves_production(store)


class CorruptGreen(LocalTarget):
    """Corrupts the model file after download, as bit rot or tampering would."""

    def prepare_bundle(self, bundle: Path) -> None:
        if f"{os.sep}green{os.sep}" in str(bundle):
            linear = bundle / "fast_path.json"
            spec = json.loads(linear.read_text())
            spec["coef"][0] += 1.0
            linear.write_text(json.dumps(spec))


def test_green_failing_its_health_check_keeps_blue(store: Store) -> None:
    with pytest.raises(ReleaseError, match="deploy prod/green") as failure:
        release(store.target(CorruptGreen), store.registry, store.v2)
    assert "production alias still on diabetes-ridge:1" in str(failure.value)
    assert_v1_serves_production(store)


def test_a_failed_production_release_writes_its_report(store: Store, tmp_path: Path) -> None:
    report = release_with_report(store, store.target(CorruptGreen), store.v2, tmp_path / "r")
    assert report["outcome"] == "rolled back"
    assert report["failed_step"] == "deploy prod/green"
    assert report["stage"] == "all"
    assert "production alias still on diabetes-ridge:1" in report["error"]
    # QA passed before production failed: its smoke test is in the report.
    assert [(t["target"], t["passed"]) for t in report["smoke_tests"]] == [("qa", True)]
    assert report["steps"][-1] == "rollback: retire prod/green"
    assert_v1_serves_production(store)


class GreenDiesAfterSwitch(LocalTarget):
    """Green passes its direct smoke test, then dies once traffic reaches it."""

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        super().set_traffic(endpoint, traffic)
        if traffic.get("green") == 100:
            from pipelines.scoring_env import stop_process

            stop_process(self.endpoint(endpoint).deployments["green"].pid)


def test_failure_after_the_switch_rolls_back_to_blue(store: Store, tmp_path: Path) -> None:
    report = release_with_report(
        store, store.target(GreenDiesAfterSwitch), store.v2, tmp_path / "reports"
    )
    assert "smoke test of prod failed" in report["error"]
    assert report["outcome"] == "rolled back"
    assert report["failed_step"] == "smoke test endpoint prod"
    # Every smoke test up to the failing one: QA, green directly, then the endpoint.
    assert [(t["target"], t["passed"]) for t in report["smoke_tests"]] == [
        ("qa", True),
        ("prod/green", True),
        ("prod", False),
    ]
    assert report["steps"][-2:] == [
        "rollback: traffic on prod: blue 100%",
        "rollback: retire prod/green",
    ]
    assert_v1_serves_production(store)


def test_successful_release_moves_alias_and_retires_blue_then_teardown(
    store: Store, tmp_path: Path
) -> None:
    target = store.target()
    blue_pid = target.endpoint(PROD_ENDPOINT).deployments["blue"].pid
    log = run_release(store.tracking.settings, target, store.v2, tmp_path / "reports")
    assert json.loads((tmp_path / "reports" / REPORT_FILE).read_text()) == log.to_dict()
    assert log.to_dict()["outcome"] == "succeeded"
    assert log.to_dict()["failed_step"] is None and log.to_dict()["error"] is None
    assert store.registry.production().version == "2"
    record = target.endpoint(PROD_ENDPOINT)
    assert record.traffic == {"green": 100}
    assert record.deployments["green"].version == "2"
    assert not process_alive(blue_pid)
    assert all(report.passed for report in log.smoke_reports)
    # and the endpoint serves v2's golden predictions, not v1's
    assert smoke_test("prod", target.client(PROD_ENDPOINT), store.registry.golden(store.v2)).passed
    assert not smoke_test(
        "prod", target.client(PROD_ENDPOINT), store.registry.golden(store.v1)
    ).passed

    pids = [d.pid for r in target.endpoints() for d in r.deployments.values()]
    assert target.teardown()
    assert not any(process_alive(pid) for pid in pids)
    assert target.endpoints() == []
    with pytest.raises(MlopsError, match="endpoint prod is not serving: no server runs it"):
        target.client(PROD_ENDPOINT)
    # back to the module's starting point for any later test
    store.registry.set_production(store.v1)
    release(target, store.registry, store.v1, stage="prod")
    assert_v1_serves_production(store)


def test_the_printed_invoke_command_answers_without_uv(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The summaries' `call it` line, run as printed by a shell that has no uv on PATH."""
    root = Path(__file__).resolve().parents[2]
    monkeypatch.chdir(root)
    monkeypatch.setenv("PATH", no_uv_path(tmp_path))
    command = mlops_command(invoke_example())
    assert command.startswith(".venv/bin/mlops endpoints invoke prod ")
    result = subprocess.run(
        ["bash", "-c", command], cwd=root, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    rows = shlex.split(command)[-1]
    direct = store.target().client(PROD_ENDPOINT).score({"data": json.loads(rows)})
    assert json.loads(result.stdout) == direct.json()
