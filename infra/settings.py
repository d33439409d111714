"""Typed, validated settings of one stack, read from `Pulumi.<stack>.yaml`.

Every setting of the platform lives in the stack file; the pydantic models below mirror it
(camelCase keys in the file, snake_case fields in code) and reject what Azure would reject
later (names, regions, node counts) and what the template's security posture forbids (an
insecure prod router, a public prod workspace). Pydantic's own error text never reaches a
user: `settings_from_config` turns the first error into one sentence naming the key as the
stack file spells it (`mlops:aks.nodeCount`), the problem, the fix and the file. Secret
values never pass through here: settings only name the config keys that hold them, and the
program reads those with `require_secret`.

Importing this module needs only PyYAML and pydantic (no Pulumi), so the CLI stays fast.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Self, get_args, get_origin

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    Strict,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel
from pydantic.fields import FieldInfo
from pydantic_core import ErrorDetails, PydanticCustomError

from infra.addresses import is_documentation_range
from infra.naming import Names, name_problem

NAMESPACE = "mlops"
"""Config namespace: the Pulumi project name in Pulumi.yaml."""

ENVIRONMENTS = ("dev", "qa", "prod")
PROJECT_ROOT = Path(__file__).resolve().parents[1]

# Canonical names of Azure public-cloud regions (`az account list-locations`).
AZURE_REGIONS = frozenset(
    """
    australiacentral australiacentral2 australiaeast australiasoutheast austriaeast
    belgiumcentral brazilsouth brazilsoutheast canadacentral canadaeast centralindia
    centralus chilecentral denmarkeast eastasia eastus eastus2 francecentral francesouth
    germanynorth germanywestcentral indonesiacentral israelcentral italynorth japaneast
    japanwest jioindiacentral jioindiawest koreacentral koreasouth malaysiawest
    mexicocentral newzealandnorth northcentralus northeurope norwayeast norwaywest
    polandcentral qatarcentral southafricanorth southafricawest southcentralus
    southeastasia southindia spaincentral swedencentral switzerlandnorth switzerlandwest
    uaecentral uaenorth uksouth ukwest westcentralus westeurope westindia westus westus2
    westus3
    """.split()  # noqa: SIM905 - a word list reads better than 58 quoted items
)

StorageSku = Literal[
    "Standard_GRS", "Standard_GZRS", "Standard_LRS", "Standard_RAGRS", "Standard_RAGZRS",
    "Standard_ZRS",
]  # fmt: skip
GEO_REDUNDANT_STORAGE = frozenset(
    {"Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"}
)
AUTH_MODES = {"key": "Key", "aml_token": "AMLToken"}
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")
_CONFIG_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_PREFIX = re.compile(r"[a-z][a-z0-9]{1,7}")
_SUFFIX = re.compile(r"[a-z0-9]{3,6}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")
_ORGANIZATION = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}")
# Learn, "tag-resources" (Limitations): names up to 512 characters, values up to 256, and
# names must not contain < > % & \ ? /.
_TAG_NAME_CHARACTERS = re.compile(r"[<>%&\\?/]")
# Keys the loader supplies; a stack file cannot set them under mlops:.
_SUPPLIED = ("stack", "source", "location")


class SettingsError(ValueError):
    """A stack setting is missing or invalid; the message says which and how to fix it."""


# ---------------------------------------------------------------------------------------
# Rules as pydantic validators: each raises one problem and its fix
# ---------------------------------------------------------------------------------------

RULE = "mlops_setting"


def rule(problem: str, fix: str, key: str = "") -> PydanticCustomError:
    """A broken rule; `key` (dotted, camelCase) is relative to where the validator runs."""
    return PydanticCustomError(RULE, "{problem}", {"problem": problem, "fix": fix, "key": key})


def _flag(value: Any) -> Any:
    # Pulumi hands scalars over as strings: "true" and "false" are the only text flags.
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    return value


def _whole(value: Any) -> Any:
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def _number(value: Any) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    if isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    return value


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    raise rule("must be a date like 2027-12-31", "fix it")


def _empty_is_none(value: Any) -> Any:
    return None if value == "" else value


def _name(kind: str) -> AfterValidator:
    def check(value: str) -> str:
        problem = name_problem(kind, value)
        if problem:
            raise rule(f"gives an invalid name: {problem}", "choose another value")
        return value

    return AfterValidator(check)


def _pattern(pattern: re.Pattern[str], what: str) -> AfterValidator:
    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise rule(f"is '{value}', not {what}", "fix it")
        return value

    return AfterValidator(check)


def _cidr(value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise rule(f"is '{value}', which is not a CIDR range", "fix it") from None
    return value


def _region(value: str) -> str:
    region = value.replace(" ", "").lower()
    if region not in AZURE_REGIONS:
        close = difflib.get_close_matches(region, sorted(AZURE_REGIONS), n=1)
        hint = f"use a region name such as '{close[0]}'" if close else "use an Azure region name"
        raise rule(f"is '{value}', which is not an Azure region", hint)
    return region


Text = Annotated[str, Strict()]
Flag = Annotated[bool, Strict(), BeforeValidator(_flag)]
Whole = Annotated[int, Strict(), BeforeValidator(_whole)]
Number = Annotated[float, Strict(), BeforeValidator(_number)]
Date = Annotated[dt.date, BeforeValidator(_date)]
Cidr = Annotated[Text, AfterValidator(_cidr)]
Region = Annotated[Text, AfterValidator(_region)]
Quantity = Annotated[Text, _pattern(_QUANTITY, "a quantity like 500m or 2Gi")]
ConfigKey = Annotated[Text, _pattern(_CONFIG_KEY, "a config key name")]
ObjectId = Annotated[Text, _pattern(_GUID, "an object id")]
ComputeName = Annotated[Text, _name("ml_compute")]
EndpointName = Annotated[Text, _name("ml_endpoint")]
KubernetesName = Annotated[Text, _name("k8s_name")]


def _present(data: Any) -> Any:
    """A key set to null counts as not set (the reader's default applies)."""
    if isinstance(data, Mapping):
        return {key: value for key, value in data.items() if value is not None}
    return data


class Section(BaseModel):
    """One object of the stack file: camelCase keys, nothing unknown, immutable."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _drop_nulls(cls, data: Any) -> Any:
        return _present(data)


# ---------------------------------------------------------------------------------------
# The settings model
# ---------------------------------------------------------------------------------------


class LoopSettings(Section):
    """The closed loop's events (infra/components/loop_events.py): on when the Azure DevOps
    organization whose retrain pipeline they start is set (docs/monitoring.md)."""

    devops_organization: Annotated[
        Annotated[Text, _pattern(_ORGANIZATION, "an organization name")] | None,
        BeforeValidator(_empty_is_none),
    ] = None


class NodePool(Section):
    """One AKS node pool that autoscales between min_count and max_count."""

    name: ClassVar[str]
    vm_size: Text
    min_count: Whole = Field(ge=0, le=1000)
    max_count: Whole = Field(ge=1, le=1000)
    os_disk_type: Literal["Managed", "Ephemeral"] = "Managed"
    os_disk_size_gb: Whole = Field(default=128, ge=30, le=2048)

    @model_validator(mode="after")
    def _min_within_max(self) -> Self:
        if self.min_count > self.max_count:
            raise rule(
                f"({self.min_count}) is above maxCount ({self.max_count})",
                "lower minCount or raise maxCount",
                key="minCount",
            )
        return self


class SystemPool(NodePool):
    """The system pool: at least one node for the cluster's own pods."""

    name: ClassVar[str] = "system"
    min_count: Whole = Field(ge=1, le=1000)


class UserPool(NodePool):
    """The pool Azure ML schedules onto; it may scale to zero."""

    name: ClassVar[str] = "azureml"


class AksSettings(Section):
    """The AKS inference cluster."""

    workload_label_key: ClassVar[str] = "mlops.azure.com/workload"
    workload_label_value: ClassVar[str] = "azureml"

    enabled: Flag
    kubernetes_version: Annotated[Text | None, BeforeValidator(_empty_is_none)] = None
    sku_tier: Literal["Free", "Standard", "Premium"] = "Free"
    upgrade_channel: Literal["patch", "stable", "rapid", "node-image"] = "stable"
    node_os_upgrade_channel: Literal["NodeImage", "SecurityPatch", "Unmanaged"] = "NodeImage"
    # checkov CKV_AZURE_168: at least 50 pods per node.
    max_pods: Whole = Field(default=50, ge=50, le=250)
    network_policy: Literal["cilium", "calico", "azure"] = "cilium"
    encryption_at_host: Flag = False
    system_pool: SystemPool
    user_pool: UserPool
    admin_group_object_ids: tuple[ObjectId, ...] = ()
    authorized_ip_ranges: tuple[Cidr, ...] = ()
    private_cluster: Flag = False

    @property
    def min_nodes(self) -> int:
        """Nodes the cluster always has (system plus user pool minimums)."""
        return self.system_pool.min_count + self.user_pool.min_count


class InstanceType(Section):
    """An Azure ML InstanceType custom resource: pod resources on the Azure ML node pool."""

    name: KubernetesName
    cpu_request: Quantity
    cpu_limit: Quantity
    memory_request: Quantity
    memory_limit: Quantity
    gpu: Whole = Field(default=0, ge=0, le=8)


class InferenceSettings(Section):
    """The Azure ML Kubernetes extension, namespaces, instance types and compute attach."""

    router_service_type: Literal["LoadBalancer", "NodePort", "ClusterIP"] = "LoadBalancer"
    internal_load_balancer: Flag = False
    allow_insecure_connections: Flag
    router_ha: Flag
    ssl_cname: Text = ""
    ssl_secret: Text = ""
    tls_cert_config_key: ConfigKey = "inferenceTlsCertPem"
    tls_key_config_key: ConfigKey = "inferenceTlsKeyPem"
    enable_training: Flag = False
    namespace: KubernetesName
    team_namespaces: tuple[KubernetesName, ...] = ()
    compute_name: ComputeName
    instance_types: tuple[InstanceType, ...]
    default_instance_type: Text

    @property
    def tls_enabled(self) -> bool:
        """The router terminates TLS with the certificate in `ssl_secret`."""
        return not self.allow_insecure_connections

    @property
    def all_namespaces(self) -> tuple[str, ...]:
        """The default namespace first, then the teams'."""
        return (self.namespace, *self.team_namespaces)

    def compute_name_for(self, namespace: str) -> str:
        """Name of the Kubernetes compute target attached for `namespace`."""
        if namespace == self.namespace:
            return self.compute_name
        return f"k8s-{namespace}"[:16].rstrip("-")

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        names = [instance.name for instance in self.instance_types]
        if not names:
            raise rule("is empty", "declare at least one instance type", key="instanceTypes")
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise rule(f"declares {duplicates[0]} twice", "rename one", key="instanceTypes")
        for team in self.team_namespaces:
            problem = name_problem("ml_compute", self.compute_name_for(team))
            if problem:
                raise rule(
                    f"gives an invalid name: {problem}", "choose another value",
                    key="teamNamespaces",
                )  # fmt: skip
        namespaces = self.all_namespaces
        if len(set(namespaces)) != len(namespaces) or "azureml" in namespaces:
            raise rule(
                "repeats a namespace or uses 'azureml' (reserved for the extension)",
                "use distinct names",
                key="teamNamespaces",
            )
        if self.default_instance_type not in names:
            raise rule(
                f"is '{self.default_instance_type}', which is not in instanceTypes",
                "name one of the declared instance types",
                key="defaultInstanceType",
            )
        if self.tls_enabled and not (self.ssl_cname and self.ssl_secret):
            raise rule(
                "is false but sslCname or sslSecret is empty, so the router has no certificate",
                "set sslCname and sslSecret",
                key="allowInsecureConnections",
            )
        return self


SUBNETS = ("aks_subnet", "private_endpoint_subnet", "aci_subnet", "training_subnet")


class NetworkSettings(Section):
    """Public access and the optional private network (VNet, private endpoints, DNS)."""

    public_network_access: Flag
    allowed_ip_ranges: tuple[Cidr, ...] = ()
    private_network: Flag = False
    address_space: Cidr = "10.40.0.0/16"
    aks_subnet: Cidr = "10.40.0.0/20"
    private_endpoint_subnet: Cidr = "10.40.16.0/24"
    aci_subnet: Cidr = "10.40.17.0/24"
    training_subnet: Cidr = "10.40.18.0/24"
    workspace_isolation_mode: Literal[
        "Disabled", "AllowInternetOutbound", "AllowOnlyApprovedOutbound"
    ] = "Disabled"

    @property
    def managed_network(self) -> bool:
        """The workspace has an Azure ML managed virtual network."""
        return self.workspace_isolation_mode != "Disabled"

    @model_validator(mode="after")
    def _subnets_inside_the_space(self) -> Self:
        space = ipaddress.ip_network(self.address_space)
        for field_name in SUBNETS:
            subnet = ipaddress.ip_network(getattr(self, field_name))
            if not subnet.subnet_of(space):  # type: ignore[arg-type]
                raise rule(
                    f"({subnet}) is outside addressSpace ({space})",
                    "fix the ranges",
                    key=to_camel(field_name),
                )
        return self


class StorageSettings(Section):
    """The workspace storage account."""

    sku: StorageSku
    containers: tuple[Annotated[Text, _name("blob_container")], ...] = ("batch-scoring",)

    @field_validator("containers")
    @classmethod
    def _not_empty(cls, containers: tuple[str, ...]) -> tuple[str, ...]:
        if not containers:
            raise rule("is empty", "list at least the batch-scoring container")
        return containers


class SecretSettings(Section):
    """A Key Vault secret whose value comes from a Pulumi config secret."""

    name: Annotated[Text, _name("kv_secret")]
    config_key: ConfigKey
    content_type: Text
    expires_on: Date

    @property
    def expires_epoch(self) -> int:
        """Expiry as Unix seconds (Key Vault's `exp` attribute), midnight UTC."""
        moment = dt.datetime.combine(self.expires_on, dt.time(), tzinfo=dt.UTC)
        return int(moment.timestamp())


class KeyVaultSettings(Section):
    """Key Vault SKU, soft-delete retention and the secrets it holds."""

    sku: Literal["standard", "premium"] = "standard"
    # Learn, "key-vault/general/soft-delete-overview": retention is 7 to 90 days.
    soft_delete_retention_days: Whole = Field(default=90, ge=7, le=90)
    secrets: tuple[SecretSettings, ...] = ()


class ContainerRegistrySettings(Section):
    """The workspace container registry."""

    sku: Literal["Basic", "Standard", "Premium"]
    quarantine: Flag = False

    @model_validator(mode="after")
    def _no_quarantine(self) -> Self:
        # The workspace ACR holds the images Azure ML builds for environments and training;
        # with quarantine on, every pushed image stays unpullable until something marks it
        # verified (PSRule "Azure.ACR.Quarantine"; Learn built-in roles: only
        # AcrQuarantineReader may pull quarantined images), so jobs and deployments would hang.
        if self.quarantine:
            raise rule(
                "is true on the workspace registry, where Azure ML pushes and pulls environment "
                "and training images that quarantine would keep unpullable",
                "set it to false and scan the scoring image in the release pipeline instead",
                key="quarantine",
            )
        return self


class MonitoringSettings(Section):
    """Log Analytics."""

    log_retention_days: Whole = Field(default=30, ge=30, le=730)


class TrainingSettings(Section):
    """The AML compute cluster used for training jobs."""

    compute_name: ComputeName
    vm_size: Text
    vm_priority: Literal["Dedicated", "LowPriority"] = "Dedicated"
    min_nodes: Whole = Field(default=0, ge=0, le=100)
    max_nodes: Whole = Field(ge=1, le=100)
    idle_seconds_before_scale_down: Whole = Field(default=900, ge=60, le=86400)

    @model_validator(mode="after")
    def _min_within_max(self) -> Self:
        if self.min_nodes > self.max_nodes:
            raise rule(
                f"({self.min_nodes}) is above maxNodes ({self.max_nodes})",
                "lower minNodes or raise maxNodes",
                key="minNodes",
            )
        return self


class AciSettings(Section):
    """The QA scoring service on Azure Container Instances."""

    enabled: Flag
    image: Text = "diabetes-scoring:latest"
    cpu: Number = Field(default=1.0, ge=0.1, le=4.0)
    memory_gb: Number = Field(default=1.5, ge=0.1, le=16.0)
    restart_policy: Literal["Always", "OnFailure", "Never"] = "Always"
    public: Flag = True
    port: Whole = Field(default=5001, ge=1, le=65535)
    scoring_key_secret: Text = "scoring-api-key"  # noqa: S105 - a secret name, not a value


class EndpointSettings(Section):
    """Online and batch endpoint shells (deployments belong to the release pipeline)."""

    online_name: EndpointName
    online_auth_mode: Literal["key", "aml_token"] = "key"
    batch_name: EndpointName

    @property
    def online_auth_mode_arm(self) -> str:
        """The auth mode as Azure spells it (Key, AMLToken)."""
        return AUTH_MODES[self.online_auth_mode]

    @model_validator(mode="after")
    def _distinct(self) -> Self:
        if self.online_name == self.batch_name:
            raise rule("equals onlineName", "give the endpoints distinct names", key="batchName")
        return self


class ModelRegistrySettings(Section):
    """The Azure ML registry shared by all environments."""

    name: Annotated[Text, _name("ml_registry")]
    create: Flag
    # Defaults (the stack's region, rg-<prefix>-shared) are filled in by `Settings`.
    resource_group: Annotated[Text, _name("resource_group")]
    location: Region
    replication_locations: tuple[Region, ...] = ()
    storage_sku: Literal["Standard_LRS", "Standard_GRS", "Standard_ZRS"] = "Standard_LRS"


class AccessSettings(Section):
    """Who besides the platform's own identities gets access (the release pipeline)."""

    pipeline_principal_id: Annotated[ObjectId | None, BeforeValidator(_empty_is_none)] = None
    pipeline_principal_type: Literal["ServicePrincipal", "Group", "User"] = "ServicePrincipal"


def _tags(value: Any) -> Any:
    if not isinstance(value, Mapping):
        return value  # pydantic reports "must be an object"
    tags: dict[Any, Any] = {}
    for key, tag in value.items():
        if not isinstance(tag, str | int | float) or isinstance(tag, bool):
            raise rule(f"must be a string, not {tag!r}", "quote it", key=str(key))
        if len(str(key)) > 512 or len(str(tag)) > 256 or _TAG_NAME_CHARACTERS.search(str(key)):
            raise rule("is not a valid Azure tag", "shorten it or drop <>%&\\?/", key=str(key))
        tags[str(key)] = str(tag)
    return tags


class Settings(BaseModel):
    """Everything one stack needs, validated.

    `stack`, `source` and `location` (from `azure-native:location`) come from the loader;
    every other field is a key under `mlops:` in the stack file.
    """

    # Unknown top-level keys are collected and refused after validation, because the
    # secret values (keyVault.secrets[].configKey, the TLS keys) sit next to the settings.
    model_config = ConfigDict(alias_generator=to_camel, extra="allow", frozen=True)

    stack: Text
    source: Text
    location: Region
    environment: Literal["dev", "qa", "prod"]
    prefix: Text
    suffix: Text
    tags: Annotated[Mapping[str, str], BeforeValidator(_tags)] = Field(default_factory=dict)
    network: NetworkSettings
    storage: StorageSettings
    key_vault: KeyVaultSettings
    container_registry: ContainerRegistrySettings
    monitoring: MonitoringSettings = MonitoringSettings()
    training: TrainingSettings
    aks: AksSettings
    inference: InferenceSettings
    aci: AciSettings
    endpoints: EndpointSettings
    model_registry: ModelRegistrySettings
    access: AccessSettings = AccessSettings()
    loop: LoopSettings = LoopSettings()

    @model_validator(mode="before")
    @classmethod
    def _supply(cls, data: Any, info: ValidationInfo) -> Any:
        """Add what the loader knows; default the registry to the stack's region and group."""
        data = _present(data)
        if not isinstance(data, Mapping):
            return data
        supplied = _present(info.context or {})
        data = {**data, **supplied}
        registry = data.get("modelRegistry")
        if isinstance(registry, Mapping):
            defaults = {
                "location": supplied.get("location"),
                "resourceGroup": (
                    Names(str(data.get("prefix")), "", "").shared_resource_group
                    if isinstance(data.get("prefix"), str)
                    else None
                ),
            }
            data["modelRegistry"] = {
                **_present(defaults),
                **_present(registry),
            }
        return data

    @field_validator("prefix")
    @classmethod
    def _prefix(cls, prefix: str) -> str:
        if not _PREFIX.fullmatch(prefix):
            raise rule(
                f"is '{prefix}' but must be 2-8 lowercase letters or digits starting with a letter",
                "shorten it",
            )
        return prefix

    @field_validator("suffix")
    @classmethod
    def _suffix(cls, suffix: str) -> str:
        if not _SUFFIX.fullmatch(suffix):
            raise rule(
                f"is '{suffix}' but must be 3-6 lowercase letters or digits",
                "fix it (it keeps global names unique)",
            )
        return suffix

    @model_validator(mode="after")
    def _whole_stack(self) -> Self:
        for check in (_known_keys, _derived_names, _cross_rules):
            check(self)
        if self.is_prod:
            _prod_rules(self)
        return self

    @property
    def names(self) -> Names:
        """Every Azure name of the stack, derived from prefix, environment and suffix."""
        return Names(self.prefix, self.environment, self.suffix)

    @property
    def is_prod(self) -> bool:
        return self.environment == "prod"

    @property
    def all_tags(self) -> dict[str, str]:
        """User tags plus the ones the template always sets."""
        return {
            **self.tags,
            "environment": self.environment,
            "managed-by": "pulumi",
            "project": NAMESPACE,
        }

    def secret_config_keys(self) -> list[str]:
        """Config keys that must hold Pulumi secrets for `pulumi up` to run."""
        keys = [secret.config_key for secret in self.key_vault.secrets]
        if self.aks.enabled and self.inference.tls_enabled:
            keys += [self.inference.tls_cert_config_key, self.inference.tls_key_config_key]
        return keys

    def secret(self, name: str) -> SecretSettings:
        """The Key Vault secret declared with `name`."""
        for secret in self.key_vault.secrets:
            if secret.name == name:
                return secret
        raise KeyError(name)


# ---------------------------------------------------------------------------------------
# Rules over the whole stack
# ---------------------------------------------------------------------------------------


def _setting_keys() -> list[str]:
    """Top-level keys a stack file may set under mlops: (as it spells them)."""
    return sorted(
        info.alias or name for name, info in Settings.model_fields.items() if name not in _SUPPLIED
    )


def _known_keys(settings: Settings) -> None:
    """Reject top-level keys that are neither settings nor secret values: they are typos."""
    secret_keys = {s.config_key for s in settings.key_vault.secrets} | {
        settings.inference.tls_cert_config_key,
        settings.inference.tls_key_config_key,
    }
    for key in settings.model_extra or {}:
        if key not in secret_keys:
            raise rule("is not a known setting", _did_you_mean(key, _setting_keys()), key=key)


def _did_you_mean(key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    return f"did you mean '{close[0]}'" if close else "remove it"


def _derived_names(settings: Settings) -> None:
    for kind, name in settings.names.checked():
        problem = name_problem(kind, name)
        if problem:
            raise rule(f"gives an invalid name: {problem}", "shorten it", key="prefix")


def _cross_rules(settings: Settings) -> None:
    """Rules that span several sections and hold in every environment."""
    network, aks, inference, aci = settings.network, settings.aks, settings.inference, settings.aci
    if aks.enabled and inference.router_ha and aks.min_nodes < 3:
        raise rule(
            f"needs at least 3 nodes but the AKS pools guarantee only {aks.min_nodes}",
            "raise aks.userPool.minCount or set routerHa to false",
            key="inference.routerHa",
        )
    compute_names = [inference.compute_name_for(n) for n in inference.all_namespaces]
    for team, compute in zip(inference.team_namespaces, compute_names[1:], strict=True):
        if compute_names.count(compute) > 1 or compute == settings.training.compute_name:
            raise rule(
                f"gives namespace {team} the compute name {compute}, which is already taken",
                "shorten or rename the namespace",
                key="inference.teamNamespaces",
            )
    if aci.enabled and aci.scoring_key_secret not in {s.name for s in settings.key_vault.secrets}:
        raise rule(
            f"names '{aci.scoring_key_secret}', which is not in keyVault.secrets",
            "declare that secret",
            key="aci.scoringKeySecret",
        )
    if aci.enabled and not aci.public and not network.private_network:
        raise rule(
            "is false but network.privateNetwork is false, so there is no subnet for it",
            "enable network.privateNetwork",
            key="aci.public",
        )
    if network.private_network and settings.container_registry.sku != "Premium":
        raise rule(
            "must use the Premium SKU because network.privateNetwork needs ACR private endpoints",
            "set containerRegistry.sku to Premium",
            key="containerRegistry",
        )
    if not network.public_network_access and not network.private_network:
        raise rule(
            "disables public access without a private network, so nothing could reach the platform",
            "enable network.privateNetwork",
            key="network",
        )
    # Learn, "how-to-managed-network", Limitations: "Kubernetes and attached VMs aren't
    # supported in an Azure Machine Learning managed virtual network".
    if network.managed_network and aks.enabled:
        raise rule(
            f"sets workspaceIsolationMode {network.workspace_isolation_mode} while aks.enabled "
            "is true, but Azure ML does not support Kubernetes compute in a managed network",
            "set network.workspaceIsolationMode to Disabled and network.privateNetwork to true",
            key="network",
        )
    # Firewall ranges do nothing while public network access is off (Learn, "storage-network-
    # security" and Key Vault "network-security": IP rules apply to the public endpoint).
    if network.allowed_ip_ranges and not network.public_network_access:
        raise rule(
            "lists allowedIpRanges while publicNetworkAccess is false, so the ranges do nothing",
            "empty network.allowedIpRanges or turn public access on",
            key="network",
        )
    if aks.private_cluster and aks.authorized_ip_ranges:
        raise rule(
            "lists authorizedIpRanges for a private cluster, whose API server has no public "
            "endpoint to restrict",
            "empty aks.authorizedIpRanges or set aks.privateCluster to false",
            key="aks",
        )
    if aks.private_cluster and not network.private_network:
        raise rule(
            "makes the API server private without network.privateNetwork, so no agent can reach it",
            "enable network.privateNetwork",
            key="aks",
        )
    # The extension's own CLI refuses NodePort together with an internal load balancer
    # (Azure/azure-cli-extensions, partner_extensions/AzureMLKubernetes.py).
    if inference.internal_load_balancer and inference.router_service_type != "LoadBalancer":
        raise rule(
            f"sets internalLoadBalancer with routerServiceType {inference.router_service_type}, "
            "but only a LoadBalancer router has a load balancer",
            "set routerServiceType to LoadBalancer or internalLoadBalancer to false",
            key="inference",
        )


def _prod_rules(settings: Settings) -> None:
    """The security posture a prod stack must keep (design note §8)."""
    inference, network, aks = settings.inference, settings.network, settings.aks
    storage_sku = settings.storage.sku
    rules: list[tuple[bool, str, str, str]] = [
        (
            aks.enabled and inference.allow_insecure_connections,
            "inference",
            "allows insecure (HTTP) connections to the prod inference router",
            "set inference.allowInsecureConnections to false with sslCname and sslSecret",
        ),
        (
            aks.enabled and not inference.router_ha,
            "inference",
            "runs a single prod inference router replica",
            "set inference.routerHa to true",
        ),
        (
            network.public_network_access,
            "network",
            "leaves public network access on in prod",
            "set network.publicNetworkAccess to false",
        ),
        (
            settings.container_registry.sku != "Premium",
            "containerRegistry",
            "is not Premium in prod (needed for private link and zone redundancy)",
            "set containerRegistry.sku to Premium",
        ),
        (
            storage_sku not in GEO_REDUNDANT_STORAGE,
            "storage",
            f"uses {storage_sku}, which is not geo-redundant",
            "use Standard_GRS, Standard_RAGRS, Standard_GZRS or Standard_RAGZRS",
        ),
        (
            aks.enabled and not aks.private_cluster and not aks.authorized_ip_ranges,
            "aks",
            "exposes the prod API server to every address",
            "set aks.privateCluster to true or list your agents' ranges in aks.authorizedIpRanges",
        ),
        (
            any(is_documentation_range(cidr) for cidr in aks.authorized_ip_ranges),
            "aks",
            "lists a documentation range (RFC 5737) in authorizedIpRanges, which no agent uses",
            "replace it with your agents' egress ranges or set aks.privateCluster to true",
        ),
        (
            aks.enabled
            and inference.router_service_type == "LoadBalancer"
            and not inference.internal_load_balancer,
            "inference",
            "puts the prod inference router on a public load balancer",
            "set inference.internalLoadBalancer to true",
        ),
        (
            aks.enabled and not aks.admin_group_object_ids,
            "aks",
            "turns Azure RBAC on in prod without adminGroupObjectIds, so no group administers it",
            "list your cluster administrators' Entra ID group in aks.adminGroupObjectIds",
        ),
        (
            aks.enabled
            and (aks.system_pool.os_disk_type != "Ephemeral" or not aks.encryption_at_host),
            "aks",
            "needs ephemeral OS disks and encryption at host in prod",
            "set systemPool.osDiskType to Ephemeral and encryptionAtHost to true",
        ),
        (
            not network.private_network,
            "network",
            "has no private network in prod (private endpoints for workspace, storage, Key Vault "
            "and ACR)",
            "set network.privateNetwork to true",
        ),
    ]
    for broken, key, problem, fix in rules:
        if broken:
            raise rule(problem, fix, key=key)


# ---------------------------------------------------------------------------------------
# Pydantic's errors as one sentence each
# ---------------------------------------------------------------------------------------


def settings_from_config(
    config: Mapping[str, Any], stack: str, source: str | None = None
) -> Settings:
    """Build validated settings from a stack's raw config (keys like `mlops:aks`)."""
    source = source or f"Pulumi.{stack}.yaml"
    top = {
        key: value
        for full_key, value in config.items()
        for namespace, _, key in [full_key.partition(":")]
        if namespace == NAMESPACE
    }
    for key in _SUPPLIED:
        if key in top:
            fix = "set azure-native:location instead" if key == "location" else "remove it"
            raise SettingsError(f"{NAMESPACE}:{key} is not a known setting; {fix} in {source}.")
    supplied = {"stack": stack, "source": source, "location": config.get("azure-native:location")}
    try:
        return Settings.model_validate(top, context=supplied)
    except ValidationError as error:
        raise SettingsError(sentence(error.errors()[0], source)) from None


def sentence(error: ErrorDetails, source: str) -> str:
    """One pydantic error as `<key> <problem>; <fix> in <file>.`"""
    path: list[str | int] = list(error["loc"])
    context = error.get("ctx") or {}
    if error["type"] == RULE:
        path += [part for part in str(context["key"]).split(".") if part]
        problem, fix = str(context["problem"]), str(context["fix"])
    else:
        problem, fix = _problem(error, _field_at(path))
        if error["type"] == "extra_forbidden":
            fix = _did_you_mean(str(path[-1]), _keys_at(path[:-1]))
    return f"{display_key(path)} {problem}; {fix} in {source}."


def display_key(path: list[str | int]) -> str:
    """A location as the stack file spells it: `mlops:aks.userPool.minCount`, `x[0]`."""
    if not path:
        return NAMESPACE
    head, *rest = path
    key = "azure-native:location" if head == "location" else f"{NAMESPACE}:{head}"
    for part in rest:
        key += f"[{part}]" if isinstance(part, int) else f".{part}"
    return key


_KINDS: dict[str, tuple[str, str]] = {
    "missing": ("is missing", "add it"),
    "extra_forbidden": ("is not a known setting", "remove it"),
    "string_type": ("must be a string, not {input!r}", "quote it"),
    "bool_type": ("must be true or false, not {input!r}", "fix it"),
    "int_type": ("must be a whole number, not {input!r}", "fix it"),
    "float_type": ("must be a number, not {input!r}", "fix it"),
    "model_type": ("must be an object, not {input!r}", "fix it"),
    "dict_type": ("must be an object, not {input!r}", "fix it"),
    "mapping_type": ("must be an object, not {input!r}", "fix it"),
    "tuple_type": ("must be a list, not {input!r}", "fix it"),
    "literal_error": ("is {input!r} but must be one of {choices}", "fix it"),
    "greater_than_equal": ("is {input} but must be {bounds}", "raise it"),
    "less_than_equal": ("is {input} but must be {bounds}", "lower it"),
}


def _problem(error: ErrorDetails, field: FieldInfo | None) -> tuple[str, str]:
    """The problem and fix of a pydantic error that no rule of ours raised."""
    value = error.get("input")
    kind = _KINDS.get(error["type"])
    if kind is None:  # never pydantic's own text: name the value and where to look
        return (
            f"has a value this setting cannot take ({value!r})",
            "see the settings reference in docs/infrastructure.md and fix it",
        )
    problem, fix = kind
    return problem.format(input=value, choices=_choices(field), bounds=_bounds(field)), fix


def _choices(field: FieldInfo | None) -> str:
    values = get_args(field.annotation) if field and get_origin(field.annotation) is Literal else ()
    return ", ".join(str(value) for value in values) or "the documented values"


def _bounds(field: FieldInfo | None) -> str:
    metadata = field.metadata if field else []
    # annotated_types' Ge and Le, which pydantic's Field(ge=..., le=...) stores.
    low = next((m.ge for m in metadata if hasattr(m, "ge")), None)
    high = next((m.le for m in metadata if hasattr(m, "le")), None)
    if low is not None and high is not None:
        return f"between {low} and {high}"
    return f"at least {low}" if low is not None else f"at most {high}"


def _model_at(path: list[str | int]) -> type[BaseModel] | None:
    """The settings model that holds the keys at `path` (camelCase keys, list indexes)."""
    model: type[BaseModel] = Settings
    for part in path:
        field = _field_in(model, part) if isinstance(part, str) else None
        if isinstance(part, int):
            continue  # the item type was unwrapped with its list
        annotation = field.annotation if field else None
        if get_origin(annotation) is tuple:
            annotation = get_args(annotation)[0]
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _field_in(model: type[BaseModel], key: str) -> FieldInfo | None:
    return next(
        (info for name, info in model.model_fields.items() if (info.alias or name) == key), None
    )


def _field_at(path: list[str | int]) -> FieldInfo | None:
    while path and isinstance(path[-1], int):
        path = path[:-1]
    model = _model_at(path[:-1]) if path else None
    return _field_in(model, str(path[-1])) if model and path else None


def _keys_at(path: list[str | int]) -> list[str]:
    model = _model_at(path)
    if model is None:
        return []
    keys = [info.alias or name for name, info in model.model_fields.items()]
    return [key for key in keys if model is not Settings or key not in _SUPPLIED]


# ---------------------------------------------------------------------------------------
# Stack files
# ---------------------------------------------------------------------------------------


def stack_file(stack: str, root: Path = PROJECT_ROOT) -> Path:
    """Path of `Pulumi.<stack>.yaml`."""
    return root / f"Pulumi.{stack}.yaml"


def available_stacks(root: Path = PROJECT_ROOT) -> list[str]:
    """Stacks that have a stack file, dev/qa/prod first."""
    found = [p.name[len("Pulumi.") : -len(".yaml")] for p in root.glob("Pulumi.*.yaml")]
    return sorted(found, key=lambda s: (ENVIRONMENTS.index(s) if s in ENVIRONMENTS else 9, s))


def read_stack_config(stack: str, root: Path = PROJECT_ROOT) -> dict[str, Any]:
    """The raw `config:` mapping of a stack file (secure values stay as {'secure': ...})."""
    path = stack_file(stack, root)
    if not path.is_file():
        known = ", ".join(available_stacks(root)) or "none"
        raise SettingsError(f"There is no {path.name} for stack '{stack}'; use one of: {known}.")
    try:
        document = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise SettingsError(f"{path.name} is not valid YAML ({error}); fix the file.") from None
    config = document.get("config", {}) if isinstance(document, dict) else None
    if not isinstance(config, dict):
        raise SettingsError(f"{path.name} has no 'config:' mapping; add one.")
    return config


def load_stack_settings(stack: str, root: Path = PROJECT_ROOT) -> Settings:
    """Read and validate the settings of one stack file."""
    return settings_from_config(read_stack_config(stack, root), stack)
