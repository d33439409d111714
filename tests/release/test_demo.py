"""`mlops demo` twice on one state: the re-run tells a true story and registers no duplicate."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines.datastore import azurite
from pipelines.registry import ModelRegistry
from pipelines.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def flat(out: str) -> str:
    """The output with table borders and runs of spaces removed."""
    return "\n".join(" ".join(line.replace("│", " ").split()) for line in out.splitlines())


def test_the_demo_twice(
    mlops: Callable[..., tuple[int, str]], state_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BUILD_SOURCEVERSION", raising=False)
    monkeypatch.setenv("GIT_COMMIT", "a" * 40)  # the same code both times, whatever git says
    code, out = mlops("demo")
    first = flat(out)
    assert code == 0, out
    assert "alpha=0.5 rmse 54.01" in first and "diabetes-ridge:1 released (first slot)" in first
    assert "diabetes-ridge:2 released (green beside blue, then blue retired)" in first
    assert "endpoints stopped at the end of the demo" in first
    assert "this re-run" not in first

    # The loop: drift found, labels → a data set, retrained on it and released as v3.
    assert "drift: " in first and "monitor.md" in first
    assert "400 labels arrived → training data set diabetes-feedback:1 (842 rows)" in first
    # Beside the candidate's score on the new holdout, production's on the same holdout.
    retrained = re.search(
        r"alpha=0\.1 \+ diabetes-feedback:1 rmse 56\.59 · mae 44\.52 · r2 0\.5053 passed vs v2 "
        r"\(rmse (?P<production>[\d.]+) on this holdout\) diabetes-ridge:3 released "
        r"\(green beside blue, then blue retired\)",
        first,
    )
    assert retrained is not None, first
    assert float(retrained["production"]) > 56.59  # the gate passed it: lower is better
    assert "→ 400 labels → diabetes-feedback:1 → retrained: diabetes-ridge:3 released" in first
    report = state_dir / "monitoring" / "prod-green"
    assert {path.name for path in report.iterdir()} == {"monitor.json", "monitor.md", "drift.png"}
    assert json.loads((report / "monitor.json").read_text())["outcome"] == "drift"

    code, out = mlops("demo")
    again = flat(out)
    assert code == 0, out
    assert "diabetes-ridge:3 is in production but not serving: restoring it." in again
    # Every candidate meets v3 (trained on feedback) and none beats it; the loop runs again on
    # the window's traffic (both demos' rows) and its retrain is gated like any other.
    assert "alpha=0.1 rmse 53.45 · mae 43 · r2 0.4609 rejected vs v3" in again
    assert "→ diabetes-feedback:2 → retrained: gate rejected it" in again
    assert "released" not in again.split("Demo summary")[1]
    assert (
        "this re-run diabetes-ridge:3 was already in production and no candidate replaced it"
        in (again)
    )
    assert "replay from scratch make reset && make demo" in again
    settings = load_settings()
    registry = ModelRegistry(settings.tracking_uri, settings.model_name)
    assert [v.version for v in registry.versions()] == ["3", "2", "1"]
    assert registry.production().version == "3"
    assert not (state_dir / "deployments").exists()  # every server stopped
    assert azurite.running(settings) is None  # and the local blob storage too
