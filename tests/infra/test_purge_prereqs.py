"""`mlops infra purge` and `mlops infra prereqs`: refusals, credentials, and what is listed."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from types import SimpleNamespace
from typing import Any

import pytest

from infra.settings import load_stack_settings
from infra.tooling.prereqs import requirements


def _mlops(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    code = "import sys; from pipelines.cli import main; sys.argv = ['mlops', *sys.argv[1:]]; main()"
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=False, env=env
    )


def _without_credentials() -> dict[str, str]:
    """No service principal in the environment and no `az` on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_")}
    env["PATH"] = os.path.dirname(sys.executable)  # python only, no az
    env["AZURE_SUBSCRIPTION_ID"] = "00000000-0000-0000-0000-000000000001"
    return env


def _one_sentence(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    assert lines[0].startswith("error: ") and lines[0].endswith(".")
    return lines[0]


def test_purge_refuses_prod() -> None:
    result = _mlops("infra", "purge", "--stack", "prod", env=_without_credentials())
    assert result.returncode != 0
    assert "is prod, and purge never deletes prod for good" in _one_sentence(result.stderr)


def test_purge_without_credentials_fails_in_one_sentence() -> None:
    result = _mlops("infra", "purge", "--stack", "dev", env=_without_credentials())
    assert result.returncode != 0
    assert "No Azure credentials are available: run `az login`" in _one_sentence(result.stderr)


def test_prereqs_check_without_credentials_fails_in_one_sentence() -> None:
    result = _mlops("infra", "prereqs", "--check", env=_without_credentials())
    assert result.returncode != 0
    assert "No Azure credentials" in _one_sentence(result.stderr)


def test_requirements_follow_the_stacks() -> None:
    def labels(stack: str) -> set[str]:
        return {r.label for r in requirements([load_stack_settings(stack)])}

    dev, qa, prod = labels("dev"), labels("qa"), labels("prod")
    assert {"Microsoft.ContainerService", "Microsoft.KubernetesConfiguration"} <= dev & prod
    assert "Microsoft.ContainerService" not in qa and "Microsoft.ContainerInstance" in qa
    assert "Microsoft.Compute/EncryptionAtHost" in prod - dev  # only prod encrypts at host
    assert "Microsoft.Network" in prod - dev
    everything = requirements(load_stack_settings(s) for s in ("dev", "qa", "prod"))
    assert len({r.label for r in everything}) == len(everything)  # each once
    feature = next(r for r in everything if r.kind == "feature")
    assert feature.command == (
        "az feature register --namespace Microsoft.Compute --name EncryptionAtHost"
    )


class _FakeVaults:
    """Behaves as azure-mgmt-keyvault's VaultsOperations does for a destroyed stack whose
    vault is soft-deleted with purge protection: `get` 404s, `get_deleted` answers with the
    scheduled purge date, and the purge is refused (HttpResponseError)."""

    def __init__(self, purge_error: bool) -> None:
        self.purge_error = purge_error
        self.purged: list[tuple[str, str]] = []

    def get(self, resource_group: str, name: str) -> Any:
        from azure.core.exceptions import ResourceNotFoundError

        raise ResourceNotFoundError("Vault not found")

    def get_deleted(self, name: str, location: str) -> Any:
        when = dt.datetime(2026, 12, 8, tzinfo=dt.UTC)
        return SimpleNamespace(properties=SimpleNamespace(scheduled_purge_date=when))

    def begin_purge_deleted(self, name: str, location: str) -> Any:
        from azure.core.exceptions import HttpResponseError

        if self.purge_error:
            raise HttpResponseError("purge protection is enabled")
        self.purged.append((name, location))
        return SimpleNamespace(result=lambda: None)


@pytest.mark.parametrize("protected", [True, False])
def test_key_vault_purge(monkeypatch: pytest.MonkeyPatch, protected: bool) -> None:
    import azure.mgmt.keyvault

    from infra.tooling.purge import PurgeError, purge_key_vault

    vaults = _FakeVaults(purge_error=protected)
    monkeypatch.setattr(
        azure.mgmt.keyvault, "KeyVaultManagementClient", lambda *a: SimpleNamespace(vaults=vaults)
    )
    settings = load_stack_settings("dev")
    if protected:
        with pytest.raises(
            PurgeError, match=r"keeps its name until 2026-12-08; change mlops:suffix"
        ):
            purge_key_vault(settings, "sub", object())
    else:
        assert purge_key_vault(settings, "sub", object()) == "key vault kv-mlops-dev-t3mpl: purged"
        assert vaults.purged == [("kv-mlops-dev-t3mpl", "westeurope")]
