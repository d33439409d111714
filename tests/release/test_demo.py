"""`mlops demo` twice on one state: the re-run tells a true story and registers no duplicate."""

from collections.abc import Callable
from pathlib import Path

import pytest

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
    assert "alpha 0.5 rmse 54.01" in first and "diabetes-ridge:1 released (first slot)" in first
    assert "diabetes-ridge:2 released (green beside blue, then blue retired)" in first
    assert "endpoints stopped at the end of the demo" in first
    assert "this re-run" not in first

    code, out = mlops("demo")
    again = flat(out)
    assert code == 0, out
    assert "diabetes-ridge:2 is in production but not serving: restoring it." in again
    assert (
        "gate rejected the candidate: identical to production model diabetes-ridge:2: same data, "
        "parameters and code; nothing to register"
    ) in again
    assert (
        "alpha 0.1 rmse 53.45 · mae 43 · r2 0.4609 rejected vs v2 not registered: identical to v2 "
        "(same data, parameters, code)"
    ) in again
    assert "released" not in again.split("Demo summary")[1]
    assert (
        "this re-run diabetes-ridge:2 was already in production and no candidate replaced it"
        in (again)
    )
    assert "replay from scratch make reset && make demo" in again
    settings = load_settings()
    registry = ModelRegistry(settings.tracking_uri, settings.model_name)
    assert [v.version for v in registry.versions()] == ["2", "1"]
    assert registry.production().version == "2"
    assert not (state_dir / "deployments").exists()  # every server stopped
