"""Key Vault secrets and the role assignments of the platform's identities.

Secrets: values come only from Pulumi config secrets (`pulumi config set --secret`), and
every secret has a content type and an expiry date. Grants here: AKS nodes pull images,
and the release pipeline's identity (if configured). The platform's own identities
(workspace, training cluster, endpoints, ACI, AKS control plane) are user-assigned and
get their grants next to the resource that uses them, before it is created
(`common.UserIdentity`). Nothing is granted on a resource group or subscription.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pulumi
from pulumi_azure_native import keyvault

from infra.components.common import ClientConfig, child, grant
from infra.settings import NAMESPACE, Settings


@dataclass(frozen=True)
class Principals:
    """Identities created elsewhere in the stack that need data-plane access here."""

    kubelet: pulumi.Output[str] | None


@dataclass(frozen=True)
class Scopes:
    """Resources the grants are scoped to."""

    acr: pulumi.Output[str]
    storage: pulumi.Output[str]
    key_vault: pulumi.Output[str]
    workspace: pulumi.Output[str]
    registry: pulumi.Output[str]


class SecretsAndAccess(pulumi.ComponentResource):
    """Key Vault secrets plus the least-privilege grant matrix."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        key_vault_name: pulumi.Input[str],
        client: ClientConfig,
        principals: Principals,
        scopes: Scopes,
        today: dt.date | None = None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:access:SecretsAndAccess", name, None, opts)
        config = pulumi.Config(NAMESPACE)
        today = today or dt.datetime.now(dt.UTC).date()
        self.secrets: dict[str, keyvault.Secret] = {}
        for secret in settings.key_vault.secrets:
            if (secret.expires_on - today).days < 30:
                pulumi.log.warn(
                    f"Key Vault secret {secret.name} expires on {secret.expires_on}: rotate it "
                    f"and move keyVault.secrets expiresOn forward in {settings.source}."
                )
            self.secrets[secret.name] = keyvault.Secret(
                f"{name}-secret-{secret.name}",
                secret_name=secret.name,
                vault_name=key_vault_name,
                resource_group_name=resource_group_name,
                properties=keyvault.SecretPropertiesArgs(
                    value=config.require_secret(secret.config_key),
                    content_type=secret.content_type,
                    attributes=keyvault.SecretAttributesArgs(
                        enabled=True, expires=secret.expires_epoch
                    ),
                ),
                tags=settings.all_tags,
                opts=child(self),
            )

        matrix: list[tuple[str, str, pulumi.Output[str], pulumi.Output[str], str]] = []
        if principals.kubelet is not None:
            matrix.append(
                ("kubelet-acr-pull", "AcrPull", scopes.acr, principals.kubelet,
                 "AKS nodes pull images")
            )  # fmt: skip
        self.grants = [
            grant(
                f"{name}-{key}",
                parent=self,
                client=client,
                role=role,
                scope=scope,
                principal_id=principal,
                description=description,
            )
            for key, role, scope, principal, description in matrix
        ]

        pipeline = settings.access.pipeline_principal_id
        if pipeline:
            pipeline_matrix: list[tuple[str, str, pulumi.Output[str], str]] = [
                ("pipeline-workspace", "AzureML Data Scientist", scopes.workspace,
                 "Release pipeline runs jobs and manages deployments"),
                ("pipeline-acr-push", "AcrPush", scopes.acr,
                 "Build pipeline pushes the scoring image"),
                ("pipeline-kv-secrets", "Key Vault Secrets User", scopes.key_vault,
                 "Smoke tests read the scoring key"),
                ("pipeline-blob", "Storage Blob Data Contributor", scopes.storage,
                 "Pipelines stage batch-scoring data"),
                ("pipeline-registry", "AzureML Registry User", scopes.registry,
                 "Pipelines register and promote models"),
            ]  # fmt: skip
            self.grants += [
                grant(
                    f"{name}-{key}",
                    parent=self,
                    client=client,
                    role=role,
                    scope=scope,
                    principal_id=pipeline,
                    principal_type=settings.access.pipeline_principal_type,
                    description=description,
                )
                for key, role, scope, description in pipeline_matrix
            ]
        self.register_outputs({"secret_names": list(self.secrets)})
