"""Helpers every component uses: child options, role assignments, the built-in roles."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import authorization, managedidentity
from pulumi_azure_native import machinelearningservices as ml

# Built-in role definition ids (the same in every tenant; Learn, "Azure built-in roles").
# Only these are ever assigned: the least-privilege policy rejects anything else, and no
# assignment is broader than one resource. Contributor and Key Vault Administrator are
# allowed only for the workspace identity, on the resources Learn documents for a
# user-assigned workspace identity ("how-to-identity-based-service-authentication").
ROLES: dict[str, str] = {
    "Contributor": "b24988ac-6180-42a0-ab88-20f7382dd24c",
    "Key Vault Administrator": "00482a5a-887f-4fb3-b363-3b7fe8e74483",
    "Azure AI Enterprise Network Connection Approver": "b556d68e-0be0-4f35-a333-ad7ee1ce17ea",
    "AcrPull": "7f951dda-4ed3-4680-a7ca-43fe172d538d",
    "AcrPush": "8311e382-0749-4cb8-b61a-304f252e45ec",
    "AcrQuarantineWriter": "c8d4ff99-41c3-41a8-9f60-21dfdad59608",
    "Key Vault Secrets User": "4633458b-17de-408a-b874-0445c86b69e6",
    "Storage Blob Data Reader": "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1",
    "Storage Blob Data Contributor": "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
    "AzureML Registry User": "1823dd4f-9b8c-4ab6-ab4e-7397a3684615",
    "AzureML Data Scientist": "f6c7c914-8db3-469d-8ca1-694a8f32e121",
    "Network Contributor": "4d97b98b-1d4f-4787-a291-c67834d212e7",
}
ROLE_NAMES = {guid: name for name, guid in ROLES.items()}


@dataclass(frozen=True)
class ClientConfig:
    """Subscription and tenant the stack deploys into (from `getClientConfig`)."""

    subscription_id: pulumi.Output[str]
    tenant_id: pulumi.Output[str]


def child(parent: pulumi.Resource, **kwargs: object) -> pulumi.ResourceOptions:
    """Options for a component's child: always parented, plus any extra options."""
    return pulumi.ResourceOptions(parent=parent, **kwargs)  # type: ignore[arg-type]


def role_definition_id(subscription_id: pulumi.Input[str], role: str) -> pulumi.Output[str]:
    """ARM id of a built-in role in the stack's subscription."""
    return pulumi.Output.concat(
        "/subscriptions/",
        subscription_id,
        "/providers/Microsoft.Authorization/roleDefinitions/",
        ROLES[role],
    )


def assignment_guid(name: str) -> str:
    """A stable role-assignment name, so re-creating the stack never duplicates a grant."""
    key = f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}"
    return str(uuid.uuid5(uuid.NAMESPACE_URL, key))


def grant(
    name: str,
    *,
    parent: pulumi.Resource,
    client: ClientConfig,
    role: str,
    scope: pulumi.Input[str],
    principal_id: pulumi.Input[str],
    principal_type: str = "ServicePrincipal",
    description: str,
    depends_on: list[pulumi.Resource] | None = None,
) -> authorization.RoleAssignment:
    """Assign one built-in role on one resource to one principal."""
    return authorization.RoleAssignment(
        name,
        role_assignment_name=assignment_guid(name),
        role_definition_id=role_definition_id(client.subscription_id, role),
        scope=scope,
        principal_id=principal_id,
        # Set explicitly: without it ARM looks the principal up in Entra ID, which fails
        # for a managed identity created seconds earlier (replication delay).
        principal_type=principal_type,
        description=description,
        opts=child(parent, depends_on=depends_on or []),
    )


Grant = tuple[str, str, pulumi.Input[str], str]
"""(key, role, scope, why) of one role assignment."""


class UserIdentity:
    """A user-assigned identity plus the roles it holds, granted before it is used.

    Azure ML grants roles itself only to *system-assigned* identities (workspace, online
    endpoint), so creating the same grants under other names fails with 409
    RoleAssignmentExists (ARM keys an assignment on principal, role and scope; see
    hashicorp/terraform-provider-azurerm PR #28694). A user-assigned identity gets no
    automatic grants: the stack assigns exactly the documented set, once, and the resource
    that uses the identity waits for `grants`.
    """

    def __init__(
        self,
        name: str,
        *,
        parent: pulumi.Resource,
        client: ClientConfig,
        resource_name: str,
        resource_group_name: pulumi.Input[str],
        location: str,
        tags: dict[str, str],
        grants: list[Grant],
    ) -> None:
        self.identity = managedidentity.UserAssignedIdentity(
            name,
            resource_name_=resource_name,
            resource_group_name=resource_group_name,
            location=location,
            tags=tags,
            opts=child(parent),
        )
        self.id = self.identity.id
        self.principal_id = self.identity.principal_id
        self.client_id = self.identity.client_id
        self._parent, self._client, self._name = parent, client, name
        self.grants: list[authorization.RoleAssignment] = []
        self.add(grants)

    def add(
        self, grants: list[Grant], depends_on: list[pulumi.Resource] | None = None
    ) -> list[authorization.RoleAssignment]:
        """Grant more roles (e.g. on a resource that exists only after the identity's user)."""
        created = [
            grant(
                f"{self._name}-{key}",
                parent=self._parent,
                client=self._client,
                role=role,
                scope=scope,
                principal_id=self.principal_id,
                description=why,
                depends_on=depends_on,
            )
            for key, role, scope, why in grants
        ]
        self.grants += created
        return created

    def azureml_identity(self) -> ml.ManagedServiceIdentityArgs:
        """The `identity` of an Azure ML resource that runs as this identity."""
        return ml.ManagedServiceIdentityArgs(
            type="UserAssigned", user_assigned_identities=[self.id]
        )


def delete_lock(
    name: str, *, parent: pulumi.Resource, scope: pulumi.Input[str], why: str
) -> authorization.ManagementLockByScope:
    """A CanNotDelete lock on one resource.

    Locks are inherited by child resources ("When you apply a lock at a parent scope, all
    child resources inherit the same lock": Learn REST, Management Locks), so deleting an
    endpoint, deployment or compute of a locked workspace needs the lock removed first.
    Creating locks needs Microsoft.Authorization/locks/* (Owner or User Access
    Administrator).
    """
    return authorization.ManagementLockByScope(
        name,
        lock_name="mlops-do-not-delete",
        scope=scope,
        level="CanNotDelete",
        notes=why,
        opts=child(parent),
    )
