"""`mlops release` and `mlops endpoints invoke` refuse bad input before doing anything, and say
what is wrong in one sentence; no inference server is started here."""

import json
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.registry import TAG_GOLDEN, ModelRegistry
from pipelines.release.runner import ReleaseLog, outcome
from pipelines.settings import load_settings
from pipelines.targets.local import DeploymentRecord, EndpointRecord, LocalTarget, serving_advice

Mlops = Callable[..., tuple[int, str]]
ROWS = "[[0.03, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.00, 0.02, -0.02]]"


def registry() -> ModelRegistry:
    settings = load_settings()
    return ModelRegistry(settings.tracking_uri, settings.model_name)


def nothing_deployed(state_dir: Path) -> bool:
    return not (state_dir / "deployments").exists()


# -- release ---------------------------------------------------------------------------------
def test_an_unknown_stage_is_refused_before_anything_else(mlops: Mlops, state_dir: Path) -> None:
    code, out = mlops("release", "--stage", "foo")  # nothing registered yet: the stage first
    assert code == 2
    assert "error: unknown release stage 'foo'; use one of all, qa, prod" in out
    assert mlops("run", "--no-release")[0] == 0
    code, out = mlops("release", "--stage", "foo")
    assert code == 2
    assert "unknown release stage 'foo'" in out
    assert "Releasing" not in out
    assert nothing_deployed(state_dir)


def test_what_a_release_needs_is_checked_before_it_starts(
    mlops: Mlops, state_dir: Path, tmp_path: Path
) -> None:
    assert mlops("run", "--no-release")[0] == 0
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    code, out = mlops("release", "--report-dir", str(blocker / "reports"))
    assert code == 2
    assert f"cannot create the report folder {blocker / 'reports'} (Not a directory)" in out
    assert "Releasing" not in out

    registry().client.delete_model_version_tag("diabetes-ridge", "1", TAG_GOLDEN)
    code, out = mlops("release", "--report-dir", str(tmp_path / "reports"))
    assert code == 2
    assert "diabetes-ridge:1 has no golden sample digest (golden_sha256)" in out
    assert "Releasing" not in out
    assert nothing_deployed(state_dir)
    assert not (tmp_path / "reports").exists()


def test_the_report_outcome_follows_what_happened() -> None:
    log = ReleaseLog(version="diabetes-ridge:2")
    assert outcome(log) == "succeeded"
    log.fail(RuntimeError("smoke test failed"))
    assert outcome(log) == "failed"  # nothing was undone (QA, or a failure before any step)
    log.rolled_back.append("retire prod/green")
    assert outcome(log) == "rolled back"
    log.rollback_problems.append("retire prod/green failed (timeout)")
    assert outcome(log) == "rollback incomplete"
    log.fail(RuntimeError("a later error"))
    assert log.error == "smoke test failed"  # the first error is the cause
    log.fail(KeyboardInterrupt())
    assert ReleaseLog(version="x").to_dict()["outcome"] == "succeeded"
    interrupted = ReleaseLog(version="x")
    interrupted.fail(KeyboardInterrupt())
    assert interrupted.to_dict()["error"] == "KeyboardInterrupt"


# -- endpoints invoke ------------------------------------------------------------------------
def test_an_unknown_endpoint_names_the_known_ones(mlops: Mlops) -> None:
    code, out = mlops("endpoints", "invoke", "staging", "--data", ROWS)
    assert code == 2
    assert "error: there is no endpoint 'staging'; the endpoints are qa and prod" in out


def test_an_unreadable_request_file_is_not_called_invalid_json(
    mlops: Mlops, tmp_path: Path
) -> None:
    missing = tmp_path / "nope.json"
    code, out = mlops("endpoints", "invoke", "prod", "--file", str(missing))
    assert code == 2
    assert f"error: cannot read {missing}: No such file or directory" in out
    assert "JSON" not in out
    code, out = mlops("endpoints", "invoke", "prod", "--file", str(tmp_path))
    assert code == 2 and f"cannot read {tmp_path}: Is a directory" in out

    broken = tmp_path / "broken.json"
    broken.write_text('{"data": [[0.03,')
    code, out = mlops("endpoints", "invoke", "prod", "--file", str(broken))
    assert code == 2 and f"{broken} is not valid JSON (Expecting value" in out
    code, out = mlops("endpoints", "invoke", "prod", "--data", "[[0.03,")
    assert code == 2 and "--data is not valid JSON" in out
    code, out = mlops("endpoints", "invoke", "prod")
    assert code == 2 and "pass exactly one of --data" in out


def test_an_endpoint_that_is_not_serving_says_how_to_serve_it(mlops: Mlops) -> None:
    code, out = mlops("endpoints", "invoke", "prod", "--data", ROWS)
    assert code == 2
    assert "endpoint prod is not serving: no server runs it" in out
    assert "no model is in production yet: release one with `mlops run`" in out
    assert "`make demo KEEP_SERVING=1`" in out

    assert mlops("run", "--no-release")[0] == 0
    registry().set_production(registry().get("diabetes-ridge:1"))  # as a demo leaves it
    code, out = mlops("endpoints", "invoke", "prod", "--data", ROWS)
    assert code == 2
    assert (
        "serve diabetes-ridge:1 again with `mlops release --stage prod --model "
        "diabetes-ridge@production`, or run `make demo KEEP_SERVING=1`"
    ) in out
    code, out = mlops("endpoints", "invoke", "qa", "--data", ROWS)
    assert code == 2 and "deploy to it with `mlops release --stage qa`" in out


def test_a_deployment_whose_server_died_is_named(mlops: Mlops, state_dir: Path) -> None:
    finished = subprocess.Popen(["true"])
    finished.wait()  # a pid that no longer runs
    settings = load_settings()
    target = LocalTarget(settings, registry())
    record = EndpointRecord(name="prod", key="k", traffic={"blue": 100})
    record.deployments["blue"] = DeploymentRecord(
        model="diabetes-ridge:1",
        version="1",
        digest="0" * 64,
        port=9,
        pid=finished.pid,
        log_file=str(settings.logs_dir / "prod-blue.log"),
        started_at=time.time(),
    )
    target._save(record)
    code, out = mlops("endpoints", "invoke", "prod", "--data", ROWS)
    assert code == 2
    assert (
        f"endpoint prod is not serving: the server of prod/blue (diabetes-ridge:1, pid "
        f"{finished.pid}) has stopped (its log: {settings.logs_dir / 'prod-blue.log'})"
    ) in out
    code, out = mlops("endpoints", "invoke", "prod", "--deployment", "green", "--data", ROWS)
    assert code == 2 and "endpoint prod has no deployment green; its deployments are blue" in out
    assert json.loads((state_dir / "deployments" / "prod.json").read_text())["traffic"] == {
        "blue": 100
    }


@pytest.mark.parametrize(
    ("endpoint", "production", "expected"),
    [
        ("prod", "m:3", "serve m:3 again with `mlops release --stage prod --model m@production`"),
        ("prod", None, "no model is in production yet"),
        ("qa", "m:3", "deploy to it with `mlops release --stage qa`"),
        ("qa", None, "deploy to it with `mlops release --stage qa`"),
    ],
)
def test_serving_advice(endpoint: str, production: str | None, expected: str) -> None:
    advice = serving_advice(endpoint, production, "m")
    assert advice.startswith(expected)
    assert advice.endswith("or run `make demo KEEP_SERVING=1`")
