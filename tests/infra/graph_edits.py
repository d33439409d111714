"""Broken inputs for policy tests: a recorded graph with one resource's inputs changed."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable
from typing import Any

from infra.policies import PolicyResource
from infra.tooling.checks import policy_resources
from infra.tooling.recording import RecordedStack


def mutated(
    recorded: RecordedStack, type_token: str, change: Callable[[dict[str, Any]], object]
) -> list[PolicyResource]:
    """The stack's policy view with `change` applied to the first resource of `type_token`."""
    resources = policy_resources(recorded)
    for index, resource in enumerate(resources):
        if resource.resource_type == type_token:
            props = copy.deepcopy(dict(resource.props))
            change(props)
            resources[index] = dataclasses.replace(resource, props=props)
            return resources
    raise LookupError(type_token)
