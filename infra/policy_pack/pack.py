"""Wrap `infra.policies` as CrossGuard policies.

Importing this module needs neither `pulumi_policy` nor a running engine: the policy
objects are made in `build_policies()` and the pack (whose constructor starts the
analyzer server and blocks) only in `main()`. The adapters take the argument objects
CrossGuard passes (`ResourceValidationArgs`, `StackValidationArgs`) by attribute, so the
tests drive them with the offline recording.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from infra.policies import (
    RESOURCE_POLICIES,
    STACK_POLICIES,
    PolicyResource,
    ResourcePolicy,
    StackPolicy,
    environment_of,
)

PACK_NAME = "mlops-azure-platform"
ReportViolation = Callable[..., None]


def _ignore_changes(args: Any) -> tuple[str, ...]:
    opts = getattr(args, "opts", None)
    return tuple(getattr(opts, "ignore_changes", None) or ())


def resource_validator(policy: ResourcePolicy) -> Callable[[Any, ReportViolation], None]:
    """A CrossGuard resource validation running one of our resource policies."""

    def validate(args: Any, report_violation: ReportViolation) -> None:
        resource = PolicyResource(
            resource_type=args.resource_type,
            name=args.name,
            urn=args.urn,
            props=args.props,
            ignore_changes=_ignore_changes(args),
        )
        for message in policy.evaluate(resource, environment_of(args.urn, args.props)):
            report_violation(f"{args.name} {message}")

    return validate


def stack_validator(policy: StackPolicy) -> Callable[[Any, ReportViolation], None]:
    """A CrossGuard stack validation running one of our stack policies."""

    def validate(args: Any, report_violation: ReportViolation) -> None:
        resources: Sequence[PolicyResource] = [
            PolicyResource(
                resource_type=r.resource_type,
                name=r.name,
                urn=r.urn,
                props=r.props,
                ignore_changes=_ignore_changes(r),
                parent=r.parent.urn if getattr(r, "parent", None) is not None else None,
                dependencies=tuple(d.urn for d in getattr(r, "dependencies", None) or ()),
            )
            for r in args.resources
        ]
        environments = [environment_of(r.urn, r.props) for r in resources if r.props.get("tags")]
        environment = environments[0] if environments else "prod"
        names = {r.urn: r.name for r in resources}
        for urn, message in policy.evaluate(resources, environment):
            report_violation(f"{names.get(urn, urn)} {message}", urn)

    return validate


def build_policies() -> list[Any]:
    """The CrossGuard policy objects (needs `pulumi_policy`)."""
    from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy

    policies: list[Any] = [
        ResourceValidationPolicy(
            name=policy.name,
            description=policy.description,
            validate=resource_validator(policy),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for policy in RESOURCE_POLICIES
    ]
    policies += [
        StackValidationPolicy(
            name=policy.name,
            description=policy.description,
            validate=stack_validator(policy),
            enforcement_level=EnforcementLevel.MANDATORY,
        )
        for policy in STACK_POLICIES
    ]
    return policies


def main() -> None:
    """Start the policy pack (blocks: Pulumi talks to it over gRPC)."""
    from pulumi_policy import EnforcementLevel, PolicyPack

    PolicyPack(
        name=PACK_NAME,
        policies=build_policies(),
        enforcement_level=EnforcementLevel.MANDATORY,
    )
