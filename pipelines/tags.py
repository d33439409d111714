"""Azure ML's documented limits on tags, checked before anything writes one.

Source: Learn, "Service limits in Azure Machine Learning"
(https://learn.microsoft.com/azure/machine-learning/resource-limits-capacity). Runs: at most
50 tags, a tag key of at most 100 characters, a tag value of at most 1,000 characters.
Experiments allow 250-character keys; the page lists no tag limits of their own for models,
jobs, environments or deployments, so the run limits, the strictest listed, apply to every tag
this project writes (locally too: what passes here passes on Azure).

Every tag writer (run tags, model-version tags, registry models, environments, deployments, the
pipeline job) sends its tags through `checked_tags`, so a value that would be refused on Azure
fails the same way on a laptop.
"""

from __future__ import annotations

from collections.abc import Mapping

from pipelines.errors import MlopsError

MAX_TAGS = 50
MAX_KEY_LENGTH = 100
MAX_VALUE_LENGTH = 1000


class TagLimitError(MlopsError):
    """A tag set that Azure ML would refuse."""


def tag_problems(tags: Mapping[str, object]) -> list[str]:
    """What breaks the documented limits, one phrase each (empty when nothing does)."""
    problems = []
    if len(tags) > MAX_TAGS:
        problems.append(f"{len(tags)} tags (at most {MAX_TAGS})")
    for key, value in tags.items():
        if not key:
            problems.append("an empty tag key")
        elif len(key) > MAX_KEY_LENGTH:
            problems.append(
                f"tag key {key[:40]}… is {len(key)} characters (at most {MAX_KEY_LENGTH})"
            )
        if len(str(value)) > MAX_VALUE_LENGTH:
            problems.append(
                f"tag {key[:40]} has a {len(str(value))}-character value "
                f"(at most {MAX_VALUE_LENGTH})"
            )
    return problems


def checked_tags(tags: Mapping[str, object], what: str) -> dict[str, str]:
    """The tags as strings, if Azure ML accepts them; TagLimitError naming `what` otherwise."""
    problems = tag_problems(tags)
    if problems:
        raise TagLimitError(
            f"the tags of {what} exceed Azure ML's limits: {'; '.join(problems)}; store large "
            "values as files (an artifact or in the model bundle) and tag only their digest"
        )
    return {str(key): str(value) for key, value in tags.items()}
