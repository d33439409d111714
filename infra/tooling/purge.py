"""Tear a dev or qa stack down for good, after `pulumi destroy`, through the Azure SDK.

Two names outlive `pulumi destroy`:

- the **workspace**: deleting a workspace soft-deletes it for 14 days and its name cannot be
  reused until then, unless it is deleted permanently (Learn, "concept-soft-delete":
  `permanently_delete` in SDK v2). A workspace whose only identity is user-assigned (this
  template's) is not soft-deleted at all ("Soft-deletion and recovery is not supported when
  a workspace uses only user-assigned managed identity"), so this matters for workspaces
  from before that change, or for a purge run before `pulumi destroy`.
- the **Key Vault**: a deleted vault stays soft-deleted for its retention days, and with
  purge protection (which the template always enables) it "cannot be purged until the
  retention period has passed" (Learn, Key Vault "soft-delete-overview"). The purge is
  attempted; when Azure refuses, the message gives the date the name is free again.

Each function returns one line for the console or raises `PurgeError` with one sentence.
"""

from __future__ import annotations

from typing import Any

from infra.settings import Settings


class PurgeError(RuntimeError):
    """Azure refused a purge step; the message says what and what to do."""


def purge_workspace(settings: Settings, subscription_id: str, credential: Any) -> str:
    """Delete the stack's workspace permanently if it still exists (active or soft-deleted)."""
    from azure.ai.ml import MLClient
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

    names = settings.names
    client = MLClient(credential, subscription_id, names.resource_group)
    try:
        client.workspaces.get(names.ml_workspace)
        poller = client.workspaces.begin_delete(
            names.ml_workspace, delete_dependent_resources=False, permanently_delete=True
        )
    except ResourceNotFoundError:
        # Not active: it may be soft-deleted. The same DELETE with forceToPurge=true that
        # azure-ai-ml's begin_delete sends (operations/_workspace_operations_base.py),
        # without its preceding get, which a soft-deleted workspace does not answer.
        try:
            poller = client.workspaces._operation.begin_delete(
                resource_group_name=names.resource_group,
                workspace_name=names.ml_workspace,
                force_to_purge=True,
            )
        except ResourceNotFoundError:
            return f"workspace {names.ml_workspace}: nothing to purge"
        except HttpResponseError as error:
            raise PurgeError(
                f"Purging workspace {names.ml_workspace} failed ({error.reason}); "
                "check that you may delete workspaces in the subscription."
            ) from None
    except HttpResponseError as error:
        raise PurgeError(
            f"Deleting workspace {names.ml_workspace} failed ({error.reason}); "
            "check that you may delete workspaces in the subscription."
        ) from None
    poller.result()
    return f"workspace {names.ml_workspace}: permanently deleted"


def purge_key_vault(settings: Settings, subscription_id: str, credential: Any) -> str:
    """Purge the stack's soft-deleted Key Vault, or say when Azure frees its name."""
    from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
    from azure.mgmt.keyvault import KeyVaultManagementClient

    name, location = settings.names.key_vault, settings.location
    vaults = KeyVaultManagementClient(credential, subscription_id).vaults
    try:
        vaults.get(settings.names.resource_group, name)
    except ResourceNotFoundError:
        pass
    else:
        raise PurgeError(
            f"Key Vault {name} still exists; run `pulumi destroy --stack {settings.stack}` first."
        )
    try:
        deleted = vaults.get_deleted(name, location)
    except ResourceNotFoundError:
        return f"key vault {name}: nothing to purge"
    try:
        vaults.begin_purge_deleted(name, location).result()
    except HttpResponseError:
        free_on = getattr(deleted.properties, "scheduled_purge_date", None)
        when = free_on.date().isoformat() if free_on else "the end of its retention period"
        raise PurgeError(
            f"Key Vault {name} is soft-deleted with purge protection, so Azure keeps its name "
            f"until {when}; change mlops:suffix in {settings.source} to re-create the stack "
            "sooner."
        ) from None
    return f"key vault {name}: purged"
