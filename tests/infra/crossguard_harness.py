"""Drive the CrossGuard policy pack the way the analyzer does, offline.

Standard library and `infra` only, so the same code runs in two environments: in the ops
environment on the pack's adapter functions (`resource_validator`, `stack_validator`), and, as
`python -m tests.infra.crossguard_harness GRAPHS.json`, in the pack's own virtualenv
(`.venv-policy`, from infra/policy_pack/requirements.txt) on the real `pulumi_policy` objects
that `build_policies()` makes. There it checks the pack, runs it over each graph in the file
and prints what each graph reported, as JSON, for the test to compare.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from infra.policies import RESOURCE_POLICIES, STACK_POLICIES, PolicyResource
from infra.policy_pack.pack import resource_validator, stack_validator

Reported = list[tuple[str, str | None]]
Validation = Callable[[Any, Callable[..., None]], object]


class _Opts:
    def __init__(self, ignore_changes: tuple[str, ...]) -> None:
        self.ignore_changes = list(ignore_changes)


class CrossGuardArgs:
    """Shaped like CrossGuard's ResourceValidationArgs / PolicyResource."""

    def __init__(self, resource: PolicyResource, props: Mapping[str, Any]) -> None:
        self.resource_type = resource.resource_type
        self.name = resource.name
        self.urn = resource.urn
        self.props = props
        self.opts = _Opts(resource.ignore_changes)
        self._resource = resource
        self.parent: CrossGuardArgs | None = None
        self.dependencies: list[CrossGuardArgs] = []


class _StackArgs:
    def __init__(self, resources: list[CrossGuardArgs]) -> None:
        self.resources = resources


def crossguard_run(
    resources: Sequence[PolicyResource],
    resource_validations: Sequence[Validation] | None = None,
    stack_validations: Sequence[Validation] | None = None,
    wrap_props: Callable[[Any], Mapping[str, Any]] = lambda props: props,
) -> Reported:
    """(message, urn) for each violation the validations report on the graph.

    By default the validations are the pack's adapters of infra.policies; `wrap_props` stands
    for what the analyzer does to the inputs before a policy sees them.
    """
    if resource_validations is None:
        resource_validations = [resource_validator(policy) for policy in RESOURCE_POLICIES]
    if stack_validations is None:
        stack_validations = [stack_validator(policy) for policy in STACK_POLICIES]
    reported: Reported = []

    def report(message: str, urn: str | None = None) -> None:
        reported.append((message, urn))

    args = {r.urn: CrossGuardArgs(r, wrap_props(r.props)) for r in resources}
    for arg in args.values():
        resource = arg._resource
        arg.parent = args.get(resource.parent) if resource.parent else None
        arg.dependencies = [args[d] for d in resource.dependencies if d in args]
    for validate in resource_validations:
        for arg in args.values():
            validate(arg, report)
    for validate_stack in stack_validations:
        validate_stack(_StackArgs(list(args.values())), report)
    return reported


def graphs_to_json(graphs: Sequence[Sequence[PolicyResource]]) -> str:
    """Policy graphs as JSON, for the policy pack's virtualenv."""
    return json.dumps([[dataclasses.asdict(r) for r in graph] for graph in graphs])


def graphs_from_json(text: str) -> list[list[PolicyResource]]:
    """The inverse of graphs_to_json."""
    return [
        [
            PolicyResource(
                **{
                    **r,
                    "ignore_changes": tuple(r["ignore_changes"]),
                    "dependencies": tuple(r["dependencies"]),
                }
            )
            for r in graph
        ]
        for graph in json.loads(text)
    ]


def _parameters(cls: type) -> set[str]:
    return set(inspect.signature(cls).parameters)


def check_pack(graphs: Sequence[Sequence[PolicyResource]]) -> list[Reported]:
    """Check the real pack (needs `pulumi_policy`) and run its policies over each graph."""
    import pulumi_policy
    from pulumi_policy.proxy import unknown_checking_proxy

    from infra.policy_pack.pack import build_policies

    policies = build_policies()
    expected = [p.name for p in RESOURCE_POLICIES] + [p.name for p in STACK_POLICIES]
    assert len(policies) == len(RESOURCE_POLICIES) + len(STACK_POLICIES), (len(policies), expected)
    assert [p.name for p in policies] == expected
    assert all(isinstance(p, pulumi_policy.Policy) for p in policies), policies
    resource_policies = [
        p for p in policies if isinstance(p, pulumi_policy.ResourceValidationPolicy)
    ]
    stack_policies = [p for p in policies if isinstance(p, pulumi_policy.StackValidationPolicy)]
    assert len(resource_policies) == len(RESOURCE_POLICIES), resource_policies
    assert len(stack_policies) == len(STACK_POLICIES), stack_policies

    # The stand-in arguments carry only attributes the real argument classes have.
    sample = CrossGuardArgs(PolicyResource("t", "n", "u", {}), {})
    shape = {name for name in vars(sample) if not name.startswith("_")}
    assert shape <= _parameters(pulumi_policy.PolicyResource), shape
    assert shape - {"parent", "dependencies"} <= _parameters(pulumi_policy.ResourceValidationArgs)
    assert set(vars(sample.opts)) <= _parameters(pulumi_policy.PolicyResourceOptions)

    return [
        crossguard_run(
            graph,
            [p.validate for p in resource_policies],
            [p.validate for p in stack_policies],
            # As the analyzer hands inputs to policies: behind its unknown-value proxy.
            wrap_props=lambda props: unknown_checking_proxy(dict(props)),
        )
        for graph in graphs
    ]


def main(argv: Sequence[str]) -> None:
    """`python -m tests.infra.crossguard_harness GRAPHS.json`: print what each graph reported."""
    graphs = graphs_from_json(Path(argv[1]).read_text())
    print(json.dumps(check_pack(graphs)))


if __name__ == "__main__":
    main(sys.argv)
