"""The local release on real inference servers, with faults injected at every stage.

One module-wide store holds v1 (released: prod/blue) and v2 (registered). Each test starts from
"v1 serves production" and must leave it so: that is the property under test.
"""

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines.errors import MlopsError
from pipelines.gate import GateConfig
from pipelines.registry import TAG_GOLDEN, RegisteredVersion
from pipelines.release.plan import PROD_ENDPOINT, QA_ENDPOINT
from pipelines.release.runner import ReleaseError, release
from pipelines.release.smoke import smoke_test
from pipelines.settings import load_settings
from pipelines.steps import Tracking, evaluate, register, train
from pipelines.targets.local import LocalTarget, process_alive
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
            run_id = train(tracking, TrainingConfig(alpha=alpha), None).run_id
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
    report = smoke_test("prod", target.client(PROD_ENDPOINT), store.v1.golden)
    assert report.passed, report.to_dict()


def test_first_release_put_v1_in_production(store: Store) -> None:
    assert_v1_serves_production(store)
    qa = store.target().endpoint(QA_ENDPOINT)
    assert qa.deployments["qa"].version == "1"
    state_file = store.tracking.settings.deployments_dir / "prod.json"
    assert oct(state_file.stat().st_mode & 0o777) == "0o600"  # it holds the endpoint key


def test_qa_smoke_failure_leaves_production_untouched(store: Store) -> None:
    wrong = json.loads(store.v2.tags[TAG_GOLDEN])
    wrong["predictions"] = [value + 1.0 for value in wrong["predictions"]]
    bad = RegisteredVersion(
        **{**store.v2.__dict__, "tags": {**store.v2.tags, TAG_GOLDEN: json.dumps(wrong)}}
    )
    with pytest.raises(ReleaseError, match="smoke test of qa failed its golden check"):
        release(store.target(), store.registry, bad)
    assert_v1_serves_production(store)


class CorruptGreen(LocalTarget):
    """Corrupts the model file after download, as bit rot or tampering would."""

    def prepare_bundle(self, bundle: Path) -> None:
        if f"{os.sep}green{os.sep}" in str(bundle):
            linear = bundle / "linear_model.json"
            spec = json.loads(linear.read_text())
            spec["coef"][0] += 1.0
            linear.write_text(json.dumps(spec))


def test_green_failing_its_health_check_keeps_blue(store: Store) -> None:
    with pytest.raises(ReleaseError, match="deploy prod/green") as failure:
        release(store.target(CorruptGreen), store.registry, store.v2)
    assert "production alias still on diabetes-ridge:1" in str(failure.value)
    assert_v1_serves_production(store)


class GreenDiesAfterSwitch(LocalTarget):
    """Green passes its direct smoke test, then dies once traffic reaches it."""

    def set_traffic(self, endpoint: str, traffic: dict[str, int]) -> None:
        super().set_traffic(endpoint, traffic)
        if traffic.get("green") == 100:
            from pipelines.scoring_env import stop_process

            stop_process(self.endpoint(endpoint).deployments["green"].pid)


def test_failure_after_the_switch_rolls_back_to_blue(store: Store) -> None:
    with pytest.raises(ReleaseError, match="smoke test of prod failed") as failure:
        release(store.target(GreenDiesAfterSwitch), store.registry, store.v2)
    assert "rolled back" in str(failure.value)
    assert_v1_serves_production(store)


def test_successful_release_moves_alias_and_retires_blue_then_teardown(store: Store) -> None:
    target = store.target()
    blue_pid = target.endpoint(PROD_ENDPOINT).deployments["blue"].pid
    log = release(target, store.registry, store.v2)
    assert store.registry.production().version == "2"
    record = target.endpoint(PROD_ENDPOINT)
    assert record.traffic == {"green": 100}
    assert record.deployments["green"].version == "2"
    assert not process_alive(blue_pid)
    assert all(report.passed for report in log.smoke_reports)
    # and the endpoint serves v2's golden predictions, not v1's
    assert smoke_test("prod", target.client(PROD_ENDPOINT), store.v2.golden).passed
    assert not smoke_test("prod", target.client(PROD_ENDPOINT), store.v1.golden).passed

    pids = [d.pid for r in target.endpoints() for d in r.deployments.values()]
    assert target.teardown()
    assert not any(process_alive(pid) for pid in pids)
    assert target.endpoints() == []
    with pytest.raises(MlopsError, match="endpoint prod has no deployment taking traffic"):
        target.client(PROD_ENDPOINT)
    # back to the module's starting point for any later test
    store.registry.set_production(store.v1)
    release(target, store.registry, store.v1, stage="prod")
    assert_v1_serves_production(store)
