"""Azure ML's documented tag limits (pipelines.tags), and every tag the demo writes within them."""

from __future__ import annotations

import json

import pytest

from pipelines.errors import MlopsError
from pipelines.gate import GateConfig
from pipelines.steps import Tracking, evaluate, register, train
from pipelines.tags import MAX_KEY_LENGTH, MAX_TAGS, MAX_VALUE_LENGTH, TagLimitError, checked_tags
from training.model import TrainingConfig


def test_tags_within_the_limits_pass_as_strings() -> None:
    tags = {f"k{i}": i for i in range(MAX_TAGS - 1)} | {"x" * MAX_KEY_LENGTH: "v" * 1000}
    assert checked_tags(tags, "run r") == {str(k): str(v) for k, v in tags.items()}


@pytest.mark.parametrize(
    ("tags", "problem"),
    [
        ({f"k{i}": "v" for i in range(MAX_TAGS + 1)}, f"51 tags (at most {MAX_TAGS})"),
        ({"k" * (MAX_KEY_LENGTH + 1): "v"}, "is 101 characters (at most 100)"),
        ({"golden": "v" * (MAX_VALUE_LENGTH + 1)}, "tag golden has a 1001-character value"),
        ({"": "v"}, "an empty tag key"),
    ],
)
def test_tags_beyond_the_limits_are_refused(tags: dict[str, str], problem: str) -> None:
    with pytest.raises(TagLimitError, match="the tags of run r exceed Azure ML's limits") as raised:
        checked_tags(tags, "run r")
    assert problem in str(raised.value)
    assert isinstance(raised.value, MlopsError)  # one sentence, exit code 2 at the CLI


def test_the_old_golden_predictions_tag_would_have_been_refused() -> None:
    """The golden sample as a tag was ~1,220 characters with the defaults (issue 10, item 5)."""
    from tests.bundles import diabetes_data as bundled_diabetes
    from training.model import fit_and_evaluate

    golden = fit_and_evaluate(bundled_diabetes(), TrainingConfig()).golden
    with pytest.raises(TagLimitError):
        checked_tags({"golden_predictions": json.dumps(golden.to_dict())}, "run r")


def test_every_tag_the_lifecycle_writes_is_within_the_limits(tracking: Tracking) -> None:
    run_id = train(tracking, TrainingConfig(), None).run_id
    evaluate(tracking, run_id, GateConfig(min_improvement=-1e9))
    version = register(tracking, run_id)
    run_tags = tracking.client.get_run(run_id).data.tags
    assert checked_tags(run_tags, "the run") == run_tags
    assert checked_tags(version.tags, "the version") == version.tags
    assert "golden_predictions" not in run_tags | version.tags
