"""The QA scoring service on Azure Container Instances.

Runs the scoring image from the environment's ACR, pulled with a user-assigned identity
that holds AcrPull (no registry passwords). The scoring API key is the same Pulumi config
secret that the stack stores in Key Vault, passed as a secure environment value (ACI has
no Key Vault references in this API version); Application Insights gets the connection
string the same way. Logs go to the environment's Log Analytics workspace.

The image tag is rolled by the release pipeline, so `pulumi up` ignores changes to it.
"""

from __future__ import annotations

import pulumi
from pulumi_azure_native import containerinstance as aci
from pulumi_azure_native import managedidentity, operationalinsights

from infra.components.common import ClientConfig, child, grant
from infra.settings import NAMESPACE, Settings

SCORING_KEY_ENV = "SCORING_API_KEY"
"""Environment variable the scoring service reads its API key from."""


class QaScoringService(pulumi.ComponentResource):
    """Container group with identity, AcrPull grant, probes and log shipping."""

    def __init__(
        self,
        name: str,
        settings: Settings,
        *,
        resource_group_name: pulumi.Input[str],
        client: ClientConfig,
        acr_id: pulumi.Input[str],
        acr_login_server: pulumi.Output[str],
        app_insights_connection_string: pulumi.Input[str],
        log_analytics_name: pulumi.Input[str],
        log_analytics_customer_id: pulumi.Input[str],
        subnet_id: pulumi.Input[str] | None,
        opts: pulumi.ResourceOptions | None = None,
    ) -> None:
        super().__init__("mlops:aci:QaScoringService", name, None, opts)
        cfg, names, tags = settings.aci, settings.names, settings.all_tags

        self.identity = managedidentity.UserAssignedIdentity(
            f"{name}-identity",
            resource_name_=names.aci_identity,
            resource_group_name=resource_group_name,
            location=settings.location,
            tags=tags,
            opts=child(self),
        )
        # The pull happens while the group is created, so the grant must exist first.
        acr_pull = grant(
            f"{name}-acr-pull",
            parent=self,
            client=client,
            role="AcrPull",
            scope=acr_id,
            principal_id=self.identity.principal_id,
            description="QA scoring service pulls its image",
        )

        key_name = settings.secret(cfg.scoring_key_secret).config_key
        scoring_key = pulumi.Config(NAMESPACE).require_secret(key_name)
        shared_keys = operationalinsights.get_shared_keys_output(
            resource_group_name=resource_group_name,
            workspace_name=log_analytics_name,
            opts=pulumi.InvokeOutputOptions(parent=self),
        )
        probe = aci.ContainerProbeArgs(
            http_get=aci.ContainerHttpGetArgs(path="/", port=cfg.port, scheme="http"),
            initial_delay_seconds=10,
            period_seconds=15,
            failure_threshold=3,
            timeout_seconds=5,
        )
        self.group = aci.ContainerGroup(
            f"{name}-group",
            container_group_name=names.aci,
            resource_group_name=resource_group_name,
            location=settings.location,
            os_type="Linux",
            sku="Standard",
            restart_policy=cfg.restart_policy,
            identity=aci.ContainerGroupIdentityArgs(
                type=aci.ResourceIdentityType.USER_ASSIGNED,
                user_assigned_identities=[self.identity.id],
            ),
            image_registry_credentials=[
                aci.ImageRegistryCredentialArgs(server=acr_login_server, identity=self.identity.id)
            ],
            containers=[
                aci.ContainerArgs(
                    name="scoring",
                    image=pulumi.Output.concat(acr_login_server, "/", cfg.image),
                    resources=aci.ResourceRequirementsArgs(
                        requests=aci.ResourceRequestsArgs(cpu=cfg.cpu, memory_in_gb=cfg.memory_gb)
                    ),
                    ports=[aci.ContainerPortArgs(port=cfg.port, protocol="TCP")],
                    environment_variables=[
                        aci.EnvironmentVariableArgs(name="MLOPS_ENVIRONMENT", value="qa"),
                        aci.EnvironmentVariableArgs(name=SCORING_KEY_ENV, secure_value=scoring_key),
                        aci.EnvironmentVariableArgs(
                            name="APPLICATIONINSIGHTS_CONNECTION_STRING",
                            secure_value=app_insights_connection_string,
                        ),
                    ],
                    liveness_probe=probe,
                    readiness_probe=probe,
                )
            ],
            ip_address=aci.IpAddressArgs(
                type="Public" if cfg.public else "Private",
                ports=[aci.PortArgs(port=cfg.port, protocol="TCP")],
                dns_name_label=names.aci_dns_label if cfg.public else None,
            ),
            subnet_ids=None
            if subnet_id is None
            else [aci.ContainerGroupSubnetIdArgs(id=subnet_id)],
            diagnostics=aci.ContainerGroupDiagnosticsArgs(
                log_analytics=aci.LogAnalyticsArgs(
                    workspace_id=log_analytics_customer_id,
                    # A credential: keep it out of the state in plain text.
                    workspace_key=pulumi.Output.secret(
                        shared_keys.primary_shared_key.apply(lambda key: key or "")
                    ),
                    log_type="ContainerInstanceLogs",
                )
            ),
            tags=tags,
            opts=child(self, depends_on=[acr_pull], ignore_changes=["containers[0].image"]),
        )
        address = self.group.ip_address.apply(lambda ip: (ip.fqdn or ip.ip or "") if ip else "")
        self.scoring_url = pulumi.Output.concat("http://", address, f":{cfg.port}/score")
        self.group_name = self.group.name
        self.identity_id = self.identity.id
        self.register_outputs({"name": self.group_name, "scoring_url": self.scoring_url})
