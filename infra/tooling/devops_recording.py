"""Run the Azure DevOps program offline under Pulumi's mocks and record what it registers.

Reuses the platform's recording harness (`infra.tooling.recording`): the same recording monitor and
Azure mocks, plus answers for the Azure DevOps invokes and the ids Azure DevOps returns
(integers for pipelines, the issuer and subject of a federated service connection).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pulumi.runtime import mocks

from infra.devops.settings import NAMESPACE, STACK, DevopsSettings, read_stack_config
from infra.tooling.recording import OfflineMocks, RecordedResource, RecordingMonitor, run_program

ORGANIZATION_ID = "00000000-0000-0000-0000-0000000000ad"
PROJECT_ID = "00000000-0000-0000-0000-00000000000b"
REPOSITORY_ID = "00000000-0000-0000-0000-00000000000c"
GET_PROJECT = "azuredevops:index/getProject:getProject"
GET_REPOSITORY = "azuredevops:index/getGitRepository:getGitRepository"


class DevopsMocks(OfflineMocks):
    """The platform's mocks, taught Azure DevOps."""

    def __init__(self) -> None:
        super().__init__()
        self._ids = itertools.count(1)

    def new_resource(self, args: mocks.MockResourceArgs) -> tuple[str | None, dict[str, Any]]:
        if not args.typ.startswith("azuredevops:"):
            return super().new_resource(args)
        outputs = dict(args.inputs)
        resource_id = str(next(self._ids))
        outputs["id"] = resource_id
        if args.typ == "azuredevops:index/serviceEndpointAzureRM:ServiceEndpointAzureRM":
            resource_id = f"00000000-0000-0000-0000-{int(resource_id):012d}"
            outputs["id"] = resource_id
            outputs["workloadIdentityFederationIssuer"] = (
                f"https://vstoken.dev.azure.com/{ORGANIZATION_ID}"
            )
            outputs["workloadIdentityFederationSubject"] = (
                f"sc://contoso/mlops/{args.inputs.get('serviceEndpointName')}"
            )
        return resource_id, outputs

    def call(self, args: mocks.MockCallArgs) -> dict[str, Any]:  # type: ignore[override]
        function = args.token
        if function == GET_PROJECT:
            self.invokes.append(function)
            name = dict(args.args).get("name")
            return {"id": PROJECT_ID, "projectId": PROJECT_ID, "name": name}
        if function == GET_REPOSITORY:
            self.invokes.append(function)
            name = dict(args.args).get("name")
            return {"id": REPOSITORY_ID, "name": name, "projectId": PROJECT_ID}
        return super().call(args)


@dataclass
class RecordedDevops:
    """The recorded Azure DevOps graph and its exported outputs."""

    settings: DevopsSettings
    resources: list[RecordedResource]
    outputs: dict[str, Any]
    secret_outputs: frozenset[str] = frozenset()
    stack: str = STACK
    environment: str = STACK
    """What `mlops infra plan` shows as the environment (the platform stacks show dev/qa/prod)."""

    @property
    def by_urn(self) -> dict[str, RecordedResource]:
        return {resource.urn: resource for resource in self.resources}

    def of_type(self, type_token: str) -> list[RecordedResource]:
        return [r for r in self.resources if r.type == type_token]

    def named(self, name: str) -> RecordedResource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name}, found {len(found)}")
        return found[0]


def pulumi_config(raw: Mapping[str, Any]) -> dict[str, str]:
    """The stack file's config as the engine passes it (objects as JSON strings)."""
    return {k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()}


def record_devops(raw: Mapping[str, Any] | None = None) -> RecordedDevops:
    """Run the program for the `devops` stack (or `raw` config) under mocks."""
    from infra.devops import program

    def build() -> DevopsSettings:
        settings = program.settings_from_pulumi_config()
        program.build(settings)
        return settings

    config = pulumi_config(read_stack_config() if raw is None else raw)
    devops_mocks = DevopsMocks()
    monitor = RecordingMonitor(devops_mocks, NAMESPACE, STACK)
    settings, exported, secret_outputs = run_program(
        devops_mocks,
        monitor,
        project=NAMESPACE,
        stack=STACK,
        config=config,
        secret_keys=[],
        program=build,
    )
    return RecordedDevops(settings, monitor.recorded, exported, secret_outputs)
