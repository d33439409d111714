"""Security posture of a stack: checkov on the ARM export plus the project's own policies.

`check_stacks` records each stack offline, writes its ARM template, runs
`checkov --framework arm` once over all templates (checkov is slow to start), runs
`infra.policies` on the recording, adds the recording-only checks (secrets stay secret),
and classifies every result:

- passed;
- failed;
- exception: one of the two documented exceptions (below);
- not required: a prod-only check failing in dev or qa.

It also fails a check that design note §8 requires but checkov never evaluated, so a
broken export cannot pass silently.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from infra.policies import PolicyResource, evaluate

Outcome = Literal["passed", "failed", "exception", "not required"]

EXCEPTIONS: dict[str, str] = {
    "CKV_AZURE_141": (
        "Azure ML's Kubernetes extension does not support AKS with local accounts disabled"
    ),
    "CKV_AZURE_166": (
        "Quarantine stays off on the workspace registry: Azure ML pushes and pulls its "
        "environment and training images there, and quarantined images cannot be pulled"
    ),
    "CKV_AZURE_172": (
        "Secret rotation is on, but AKS add-on config values are strings ('true') and "
        "checkov expects a boolean; mlops-aks verifies the value"
    ),
}


def _private_cluster(resource: dict[str, Any], template: dict[str, Any]) -> bool:
    profile = (resource.get("properties") or {}).get("apiServerAccessProfile") or {}
    return bool(profile.get("enablePrivateCluster"))


def _workspace_behind_private_endpoint(resource: dict[str, Any], template: dict[str, Any]) -> bool:
    """No managed network, public access off, and an inbound private endpoint to it."""
    properties = resource.get("properties") or {}
    if properties.get("managedNetwork") or properties.get("publicNetworkAccess") != "Disabled":
        return False
    suffix = f"/workspaces/{resource.get('name')}"
    return any(
        other.get("type") == "Microsoft.Network/privateEndpoints"
        and connection.get("groupIds") == ["amlworkspace"]
        and str(connection.get("privateLinkServiceId", "")).endswith(suffix)
        for other in template.get("resources", [])
        for connection in (other.get("properties") or {}).get("privateLinkServiceConnections", [])
    )


# Exceptions that hold only for some resources: check id -> (ARM type, predicate on the
# ARM resource and the whole template, note).
CONDITIONAL_EXCEPTIONS: dict[str, tuple[str, Any, str]] = {
    "CKV_AZURE_6": (
        "Microsoft.ContainerService/managedClusters",
        _private_cluster,
        "Private cluster: the API server has no public endpoint for authorized ranges to "
        "restrict (Azure ML reaches it through AKS trusted access)",
    ),
    "CKV_AZURE_243": (
        "Microsoft.MachineLearningServices/workspaces",
        _workspace_behind_private_endpoint,
        "Customer-VNet pattern (Kubernetes compute rules out a managed network): the workspace "
        "has an inbound private endpoint; checkov reads only managed-network outbound rules",
    ),
}


def conditional_exceptions(template: dict[str, Any]) -> dict[tuple[str, str], str]:
    """(check id, checkov resource) -> note, for the exceptions that hold in this template."""
    found = {}
    for check_id, (arm_type, applies, note) in CONDITIONAL_EXCEPTIONS.items():
        for resource in template.get("resources", []):
            if resource.get("type") == arm_type and applies(resource, template):
                found[(check_id, f"{arm_type}.{resource.get('name')}")] = note
    return found


# Checks each environment must pass, by ARM resource type (design note §8). A check is
# required only where its resource type exists in the stack (qa has no AKS).
REQUIRED_ALL: dict[str, tuple[str, ...]] = {
    "Microsoft.Storage/storageAccounts": (
        "CKV_AZURE_3", "CKV_AZURE_43", "CKV_AZURE_44", "CKV_AZURE_36",
    ),
    "Microsoft.Storage/storageAccounts/blobServices/containers": ("CKV_AZURE_34",),
    "Microsoft.KeyVault/vaults": ("CKV_AZURE_42", "CKV_AZURE_110", "CKV_AZURE_111"),
    "Microsoft.KeyVault/vaults/secrets": ("CKV_AZURE_41", "CKV_AZURE_114"),
    "Microsoft.ContainerRegistry/registries": ("CKV_AZURE_137", "CKV_AZURE_138"),
    "Microsoft.ContainerService/managedClusters": (
        "CKV_AZURE_4", "CKV_AZURE_5", "CKV_AZURE_7", "CKV_AZURE_8", "CKV_AZURE_168",
        "CKV_AZURE_169", "CKV_AZURE_171",
    ),
}  # fmt: skip
REQUIRED_PROD: dict[str, tuple[str, ...]] = {
    "Microsoft.Storage/storageAccounts": ("CKV_AZURE_35", "CKV_AZURE_59", "CKV_AZURE_206"),
    "Microsoft.KeyVault/vaults": ("CKV_AZURE_109", "CKV_AZURE_189"),
    "Microsoft.ContainerRegistry/registries": (
        "CKV_AZURE_139", "CKV_AZURE_163", "CKV_AZURE_233",
    ),
    "Microsoft.ContainerService/managedClusters": (
        "CKV_AZURE_6", "CKV_AZURE_226", "CKV_AZURE_227",
    ),
    "Microsoft.MachineLearningServices/workspaces": ("CKV2_AZURE_49", "CKV_AZURE_243"),
}  # fmt: skip
PROD_ONLY = frozenset(check for checks in REQUIRED_PROD.values() for check in checks)


@dataclass(frozen=True)
class CheckResult:
    """One row of the check table."""

    stack: str
    source: str  # checkov or mlops
    check_id: str
    title: str
    resource: str
    outcome: Outcome
    note: str = ""


@dataclass
class StackReport:
    """Every result of one stack."""

    stack: str
    environment: str
    results: list[CheckResult]
    template: Path | None = None

    def count(self, outcome: Outcome) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ok(self) -> bool:
        return self.count("failed") == 0

    def checkov_counts(self) -> dict[str, int]:
        """Checkov's own passed/failed/skipped view (before our classification)."""
        rows = [r for r in self.results if r.source == "checkov"]
        return {
            "passed": sum(1 for r in rows if r.outcome == "passed"),
            "failed": sum(1 for r in rows if r.outcome in ("failed", "exception", "not required")),
            "exceptions": sum(1 for r in rows if r.outcome == "exception"),
            "not required": sum(1 for r in rows if r.outcome == "not required"),
        }


class CheckovError(RuntimeError):
    """Checkov could not run or produced no readable report."""


def checkov_command() -> list[str]:
    """The checkov executable of this environment (next to the interpreter), else PATH."""
    local = Path(sys.executable).parent / "checkov"
    if local.exists():
        return [str(local)]
    found = shutil.which("checkov")
    if not found:
        raise CheckovError("checkov is not installed; run `uv sync` to install it.")
    return [found]


def run_checkov(directory: Path, timeout: float = 600) -> list[dict[str, Any]]:
    """Run `checkov --framework arm` on a directory and return its JSON reports."""
    command = [
        *checkov_command(),
        "--framework", "arm",
        "--directory", str(directory),
        "--output", "json",
        "--skip-download",  # no network here: no guidelines, no platform policies
    ]  # fmt: skip
    env = {**os.environ, "BC_SKIP_MAPPING": "TRUE", "CHECKOV_EXPERIMENTAL_IMAGE_REFERENCING": "0"}
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout, env=env, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        raise CheckovError(f"checkov did not run ({error}).") from None
    # checkov exits 1 when a check fails; only unreadable output is an error here.
    try:
        data = json.loads(completed.stdout)
    except json.JSONDecodeError:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise CheckovError(f"checkov produced no JSON report: {' / '.join(tail)}") from None
    reports = data if isinstance(data, list) else [data]
    return [report for report in reports if report.get("check_type") == "arm"]


def _checkov_rows(report: dict[str, Any]) -> Iterable[tuple[str, str, str, str, str]]:
    """(file path, check id, title, resource, PASSED/FAILED/SKIPPED) from one report."""
    results = report.get("results", {})
    for key, status in (
        ("passed_checks", "PASSED"),
        ("failed_checks", "FAILED"),
        ("skipped_checks", "SKIPPED"),
    ):
        for row in results.get(key, []):
            yield row["file_path"], row["check_id"], row["check_name"], row["resource"], status


def classify_checkov(
    stack: str,
    environment: str,
    rows: Iterable[tuple[str, str, str, str]],
    conditional: dict[tuple[str, str], str] | None = None,
) -> list[CheckResult]:
    """Turn checkov rows (check id, title, resource, status) into classified results."""
    results = []
    conditional = conditional or {}
    for check_id, title, resource, status in rows:
        outcome: Outcome
        note = ""
        if status == "PASSED":
            outcome = "passed"
        elif (check_id, resource) in conditional:
            outcome, note = "exception", conditional[(check_id, resource)]
        elif check_id in EXCEPTIONS:
            outcome, note = "exception", EXCEPTIONS[check_id]
        elif check_id in PROD_ONLY and environment != "prod":
            outcome, note = "not required", "required in prod only"
        else:
            outcome = "failed"
        arm_type, _, name = resource.removeprefix("Microsoft.").partition(".")
        shown = f"{name} ({arm_type.rsplit('/', 1)[-1]})"
        results.append(CheckResult(stack, "checkov", check_id, title, shown, outcome, note))
    return results


def missing_required(
    stack: str, environment: str, arm_types: set[str], results: Sequence[CheckResult]
) -> list[CheckResult]:
    """Failures for required checks that checkov never reported as passed (or excepted)."""
    required: dict[str, tuple[str, ...]] = {}
    for table in (REQUIRED_ALL, REQUIRED_PROD) if environment == "prod" else (REQUIRED_ALL,):
        for arm_type, checks in table.items():
            required.setdefault(arm_type, ())
            required[arm_type] += checks
    passed = {
        r.check_id
        for r in results
        if r.source == "checkov" and r.outcome in ("passed", "exception")
    }
    missing = []
    for arm_type, checks in required.items():
        if arm_type not in arm_types:
            continue
        for check_id in checks:
            if check_id not in passed:
                missing.append(
                    CheckResult(
                        stack, "checkov", check_id, "required by design note §8 but not passed",
                        arm_type, "failed",
                    )
                )  # fmt: skip
    return missing


def policy_resources(recorded: Any) -> list[PolicyResource]:
    """The recording as policy input."""
    return [
        PolicyResource(
            resource_type=r.type,
            name=r.name,
            urn=r.urn,
            props=r.inputs,
            ignore_changes=r.ignore_changes,
            parent=r.parent or None,
            dependencies=r.dependencies,
            outputs=r.outputs,
        )
        for r in recorded.resources
    ]


def recording_checks(recorded: Any) -> list[CheckResult]:
    """Checks only the recording can do: secrets stay secret, Kubernetes via its provider."""
    stack, results = recorded.stack, []

    def add(check_id: str, title: str, resource: str, ok: bool, problem: str) -> None:
        results.append(
            CheckResult(stack, "mlops", check_id, problem if not ok else title, resource,
                        "passed" if ok else "failed")
        )  # fmt: skip

    secret_inputs = {
        "azure-native:keyvault:Secret": "properties",
        "kubernetes:core/v1:Secret": "stringData",
        "pulumi:providers:kubernetes": "kubeconfig",
    }
    for resource in recorded.resources:
        key = secret_inputs.get(resource.type)
        if key:
            add(
                "mlops-secrets-are-secret",
                f"{key} is a Pulumi secret",
                resource.name,
                key in resource.secret_inputs,
                f"{key} is stored in plain text in the state",
            )
        if resource.type == "azure-native:containerinstance:ContainerGroup":
            add(
                "mlops-secrets-are-secret",
                "secure environment values and the log key are Pulumi secrets",
                resource.name,
                {"containers", "diagnostics"} <= resource.secret_inputs,
                "secure environment values or the log key are stored in plain text in the state",
            )
        if resource.type.startswith("kubernetes:"):
            add(
                "mlops-k8s-explicit-provider",
                "uses the provider built from the admin kubeconfig",
                resource.name,
                "pulumi:providers:kubernetes::" in resource.provider
                and "::default" not in resource.provider,
                "uses the ambient kubeconfig instead of the cluster's provider",
            )
        if resource.type == "azure-native:machinelearningservices:Registry":
            add(
                "mlops-registry-retained",
                "survives `pulumi destroy` of the owning stack",
                resource.name,
                resource.retain_on_delete,
                "would be deleted with the owning stack",
            )
    for key in ("app_insights_connection_string",):
        if key in recorded.outputs:
            add(
                "mlops-secrets-are-secret",
                "stack output is a secret",
                key,
                key in recorded.secret_outputs,
                "stack output is not a secret",
            )
    return results


def policy_checks(recorded: Any) -> list[CheckResult]:
    """infra.policies on the recording, one row per policy and resource."""
    environment = recorded.settings.environment
    report = evaluate(policy_resources(recorded), environment)
    failed: dict[tuple[str, str], list[str]] = {}
    for violation in report.violations:
        failed.setdefault((violation.policy, violation.resource), []).append(violation.message)
    results = []
    for policy, resources in sorted(report.evaluated.items()):
        for resource in sorted(resources):
            messages = failed.pop((policy, resource), [])
            results.append(
                CheckResult(
                    recorded.stack, "mlops", policy, "; ".join(messages) if messages else "ok",
                    resource, "failed" if messages else "passed",
                )
            )  # fmt: skip
    for (policy, resource), messages in sorted(failed.items()):
        results.append(
            CheckResult(recorded.stack, "mlops", policy, "; ".join(messages), resource, "failed")
        )
    return results


def check_stacks(
    stacks: Sequence[str], workdir: Path, recordings: dict[str, Any] | None = None
) -> list[StackReport]:
    """Record, export, scan and evaluate the given stacks."""
    from infra.tooling.arm import to_arm_template  # deferred: pulls in the recording machinery
    from infra.tooling.recording import record_stack

    recordings = dict(recordings or {})
    templates: dict[str, Path] = {}
    arm_types: dict[str, set[str]] = {}
    conditional: dict[str, dict[tuple[str, str], str]] = {}
    for stack in stacks:
        if stack not in recordings:
            recordings[stack] = record_stack(stack)
        template = to_arm_template(recordings[stack])
        path = workdir / stack / "template.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(template, indent=2) + "\n")
        templates[stack] = path
        arm_types[stack] = {resource["type"] for resource in template["resources"]}
        conditional[stack] = conditional_exceptions(template)

    rows: dict[str, list[tuple[str, str, str, str]]] = {stack: [] for stack in stacks}
    for report in run_checkov(workdir):
        for file_path, check_id, title, resource, status in _checkov_rows(report):
            stack = Path(file_path.lstrip("/")).parts[0]
            if stack in rows:
                rows[stack].append((check_id, title, resource, status))

    reports = []
    for stack in stacks:
        recorded = recordings[stack]
        environment = recorded.settings.environment
        results = classify_checkov(stack, environment, rows[stack], conditional[stack])
        results += missing_required(stack, environment, arm_types[stack], results)
        results += policy_checks(recorded)
        results += recording_checks(recorded)
        reports.append(StackReport(stack, environment, results, templates[stack]))
    return reports
