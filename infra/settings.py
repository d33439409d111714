"""Typed, validated settings of one stack, read from `Pulumi.<stack>.yaml`.

Every setting of the platform lives in the stack file; this module turns the raw config
into frozen dataclasses and rejects what Azure would reject later (names, regions,
node counts) and what the template's security posture forbids (an insecure prod router,
a public prod workspace). Each error is one sentence naming the key, the problem and
the fix. Secret values never pass through here: settings only name the config keys that
hold them, and the program reads those with `require_secret`.

Importing this module needs only PyYAML, so the CLI stays fast.
"""

from __future__ import annotations

import datetime as dt
import difflib
import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

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

GEO_REDUNDANT_STORAGE = frozenset(
    {"Standard_GRS", "Standard_RAGRS", "Standard_GZRS", "Standard_RAGZRS"}
)
STORAGE_SKUS = GEO_REDUNDANT_STORAGE | {"Standard_LRS", "Standard_ZRS"}
ACR_SKUS = ("Basic", "Standard", "Premium")
UPGRADE_CHANNELS = ("patch", "stable", "rapid", "node-image")
NODE_OS_UPGRADE_CHANNELS = ("NodeImage", "SecurityPatch", "Unmanaged")
ROUTER_SERVICE_TYPES = ("LoadBalancer", "NodePort", "ClusterIP")
AUTH_MODES = {"key": "Key", "aml_token": "AMLToken"}
WORKSPACE_ISOLATION = ("Disabled", "AllowInternetOutbound", "AllowOnlyApprovedOutbound")
_QUANTITY = re.compile(r"\d+(\.\d+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")
_CONFIG_KEY = re.compile(r"[a-zA-Z][a-zA-Z0-9_]*")
_PREFIX = re.compile(r"[a-z][a-z0-9]{1,7}")
_SUFFIX = re.compile(r"[a-z0-9]{3,6}")
_GUID = re.compile(r"[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}")


class SettingsError(ValueError):
    """A stack setting is missing or invalid; the message says which and how to fix it."""


# ---------------------------------------------------------------------------------------
# The settings model
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LoopSettings:
    """The closed loop's events (infra/components/loop_events.py): on when the Azure DevOps
    organization whose retrain pipeline they start is set (docs/monitoring.md)."""

    devops_organization: str | None = None


@dataclass(frozen=True)
class NodePool:
    """One AKS node pool that autoscales between min_count and max_count."""

    name: str
    vm_size: str
    min_count: int
    max_count: int
    os_disk_type: str
    os_disk_size_gb: int


@dataclass(frozen=True)
class AksSettings:
    """The AKS inference cluster."""

    enabled: bool
    kubernetes_version: str | None
    sku_tier: str
    upgrade_channel: str
    node_os_upgrade_channel: str
    max_pods: int
    network_policy: str
    encryption_at_host: bool
    system_pool: NodePool
    user_pool: NodePool
    admin_group_object_ids: tuple[str, ...]
    authorized_ip_ranges: tuple[str, ...]
    private_cluster: bool

    workload_label_key = "mlops.azure.com/workload"
    workload_label_value = "azureml"

    @property
    def min_nodes(self) -> int:
        """Nodes the cluster always has (system plus user pool minimums)."""
        return self.system_pool.min_count + self.user_pool.min_count


@dataclass(frozen=True)
class InstanceType:
    """An Azure ML InstanceType custom resource: pod resources on the Azure ML node pool."""

    name: str
    cpu_request: str
    cpu_limit: str
    memory_request: str
    memory_limit: str
    gpu: int = 0


@dataclass(frozen=True)
class InferenceSettings:
    """The Azure ML Kubernetes extension, namespaces, instance types and compute attach."""

    router_service_type: str
    internal_load_balancer: bool
    allow_insecure_connections: bool
    router_ha: bool
    ssl_cname: str
    ssl_secret: str
    tls_cert_config_key: str
    tls_key_config_key: str
    enable_training: bool
    namespace: str
    team_namespaces: tuple[str, ...]
    compute_name: str
    instance_types: tuple[InstanceType, ...]
    default_instance_type: str

    @property
    def tls_enabled(self) -> bool:
        """The router terminates TLS with the certificate in `ssl_secret`."""
        return not self.allow_insecure_connections

    def compute_name_for(self, namespace: str) -> str:
        """Name of the Kubernetes compute target attached for `namespace`."""
        if namespace == self.namespace:
            return self.compute_name
        return f"k8s-{namespace}"[:16].rstrip("-")


@dataclass(frozen=True)
class NetworkSettings:
    """Public access and the optional private network (VNet, private endpoints, DNS)."""

    public_network_access: bool
    allowed_ip_ranges: tuple[str, ...]
    private_network: bool
    address_space: str
    aks_subnet: str
    private_endpoint_subnet: str
    aci_subnet: str
    training_subnet: str
    workspace_isolation_mode: str

    @property
    def managed_network(self) -> bool:
        """The workspace has an Azure ML managed virtual network."""
        return self.workspace_isolation_mode != "Disabled"


@dataclass(frozen=True)
class SecretSettings:
    """A Key Vault secret whose value comes from a Pulumi config secret."""

    name: str
    config_key: str
    content_type: str
    expires_on: dt.date

    @property
    def expires_epoch(self) -> int:
        """Expiry as Unix seconds (Key Vault's `exp` attribute), midnight UTC."""
        moment = dt.datetime.combine(self.expires_on, dt.time(), tzinfo=dt.UTC)
        return int(moment.timestamp())


@dataclass(frozen=True)
class KeyVaultSettings:
    """Key Vault SKU, soft-delete retention and the secrets it holds."""

    sku: str
    soft_delete_retention_days: int
    secrets: tuple[SecretSettings, ...]


@dataclass(frozen=True)
class TrainingSettings:
    """The AML compute cluster used for training jobs."""

    compute_name: str
    vm_size: str
    vm_priority: str
    min_nodes: int
    max_nodes: int
    idle_seconds_before_scale_down: int


@dataclass(frozen=True)
class AciSettings:
    """The QA scoring service on Azure Container Instances."""

    enabled: bool
    image: str
    cpu: float
    memory_gb: float
    restart_policy: str
    public: bool
    port: int
    scoring_key_secret: str


@dataclass(frozen=True)
class EndpointSettings:
    """Online and batch endpoint shells (deployments belong to the release pipeline)."""

    online_name: str
    online_auth_mode: str
    batch_name: str

    @property
    def online_auth_mode_arm(self) -> str:
        """The auth mode as Azure spells it (Key, AMLToken)."""
        return AUTH_MODES[self.online_auth_mode]


@dataclass(frozen=True)
class ModelRegistrySettings:
    """The Azure ML registry shared by all environments."""

    name: str
    create: bool
    resource_group: str
    location: str
    replication_locations: tuple[str, ...]
    storage_sku: str


@dataclass(frozen=True)
class AccessSettings:
    """Who besides the platform's own identities gets access (the release pipeline)."""

    pipeline_principal_id: str | None
    pipeline_principal_type: str


@dataclass(frozen=True)
class Settings:
    """Everything one stack needs, validated."""

    stack: str
    source: str
    environment: str
    location: str
    prefix: str
    suffix: str
    tags: Mapping[str, str]
    network: NetworkSettings
    storage_sku: str
    storage_containers: tuple[str, ...]
    key_vault: KeyVaultSettings
    acr_sku: str
    acr_quarantine: bool
    log_retention_days: int
    training: TrainingSettings
    aks: AksSettings
    inference: InferenceSettings
    aci: AciSettings
    endpoints: EndpointSettings
    model_registry: ModelRegistrySettings
    access: AccessSettings
    loop: LoopSettings = LoopSettings()
    names: Names = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "names", Names(self.prefix, self.environment, self.suffix))

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
# Reading raw config
# ---------------------------------------------------------------------------------------

_MISSING: Any = object()


class _Reader:
    """Reads one config object, tracking its key path for error messages."""

    def __init__(self, data: Mapping[str, Any], path: str, source: str, sep: str = ".") -> None:
        self.data = data
        self.path = path
        self.source = source
        self.sep = sep
        self.seen: set[str] = set()

    def fail(self, key: str, problem: str, fix: str) -> SettingsError:
        return SettingsError(f"{self._key(key)} {problem}; {fix} in {self.source}.")

    def _key(self, key: str) -> str:
        return f"{self.path}{self.sep}{key}" if key else self.path

    def _get(self, key: str, default: Any) -> Any:
        self.seen.add(key)
        value = self.data.get(key, _MISSING)
        if value is _MISSING or value is None:
            if default is _MISSING:
                raise self.fail(key, "is missing", "add it")
            return default
        return value

    def str_(self, key: str, default: Any = _MISSING, choices: tuple[str, ...] = ()) -> str:
        value = self._get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, f"must be a string, not {value!r}", "quote it")
        if choices and value not in choices:
            raise self.fail(key, f"is '{value}' but must be one of {', '.join(choices)}", "fix it")
        return value

    def opt_str(self, key: str) -> str | None:
        value = self._get(key, None)
        return None if value in (None, "") else self.str_(key)

    def bool_(self, key: str, default: Any = _MISSING) -> bool:
        value = self._get(key, default)
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise self.fail(key, f"must be true or false, not {value!r}", "fix it")
        return value

    def int_(self, key: str, default: Any = _MISSING, lo: int = 0, hi: int = 10**9) -> int:
        value = self._get(key, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"must be a whole number, not {value!r}", "fix it")
        if not lo <= value <= hi:
            raise self.fail(key, f"is {value} but must be between {lo} and {hi}", "fix it")
        return value

    def float_(self, key: str, default: Any = _MISSING, lo: float = 0.0, hi: float = 1e9) -> float:
        value = self._get(key, default)
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise self.fail(key, f"must be a number, not {value!r}", "fix it") from None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.fail(key, f"must be a number, not {value!r}", "fix it")
        if not lo <= float(value) <= hi:
            raise self.fail(key, f"is {value} but must be between {lo} and {hi}", "fix it")
        return float(value)

    def list_(self, key: str, default: Any = _MISSING) -> list[Any]:
        value = self._get(key, default)
        if not isinstance(value, list):
            raise self.fail(key, f"must be a list, not {value!r}", "fix it")
        return value

    def str_list(self, key: str, default: Any = _MISSING) -> tuple[str, ...]:
        items = self.list_(key, default)
        for item in items:
            if not isinstance(item, str):
                raise self.fail(key, f"must be a list of strings, but has {item!r}", "fix it")
        return tuple(items)

    def obj(self, key: str, default: Any = _MISSING) -> _Reader:
        value = self._get(key, default)
        if not isinstance(value, Mapping):
            raise self.fail(key, f"must be an object, not {value!r}", "fix it")
        return _Reader(value, self._key(key), self.source)

    def item(self, key: str, index: int, value: Any) -> _Reader:
        if not isinstance(value, Mapping):
            raise self.fail(f"{key}[{index}]", f"must be an object, not {value!r}", "fix it")
        return _Reader(value, f"{self._key(key)}[{index}]", self.source)

    def done(self, allowed_extra: frozenset[str] = frozenset()) -> None:
        """Reject keys nobody read: they are typos that would otherwise be ignored."""
        for key in self.data:
            if key not in self.seen and key not in allowed_extra:
                close = difflib.get_close_matches(key, sorted(self.seen), n=1)
                hint = f"did you mean '{close[0]}'" if close else "remove it"
                raise self.fail(key, "is not a known setting", hint)


def _check_name(reader: _Reader, key: str, kind: str, name: str) -> None:
    problem = name_problem(kind, name)
    if problem:
        raise reader.fail(key, f"gives an invalid name: {problem}", "choose another value")


def _check_region(reader: _Reader, key: str, value: str) -> str:
    region = value.replace(" ", "").lower()
    if region not in AZURE_REGIONS:
        close = difflib.get_close_matches(region, sorted(AZURE_REGIONS), n=1)
        hint = f"use a region name such as '{close[0]}'" if close else "use an Azure region name"
        raise reader.fail(key, f"is '{value}', which is not an Azure region", hint)
    return region


def _check_cidr(reader: _Reader, key: str, value: str) -> str:
    try:
        ipaddress.ip_network(value, strict=True)
    except ValueError:
        raise reader.fail(key, f"has '{value}', which is not a CIDR range", "fix it") from None
    return value


def _check_quantity(reader: _Reader, key: str, value: str) -> str:
    if not _QUANTITY.fullmatch(value):
        raise reader.fail(key, f"is '{value}', not a quantity like 500m or 2Gi", "fix it")
    return value


def _read_pool(reader: _Reader, key: str, name: str, min_floor: int) -> NodePool:
    pool = reader.obj(key)
    result = NodePool(
        name=name,
        vm_size=pool.str_("vmSize"),
        min_count=pool.int_("minCount", lo=min_floor, hi=1000),
        max_count=pool.int_("maxCount", lo=1, hi=1000),
        os_disk_type=pool.str_("osDiskType", "Managed", choices=("Managed", "Ephemeral")),
        os_disk_size_gb=pool.int_("osDiskSizeGb", 128, lo=30, hi=2048),
    )
    pool.done()
    if result.min_count > result.max_count:
        raise pool.fail(
            "minCount",
            f"({result.min_count}) is above maxCount ({result.max_count})",
            "lower minCount or raise maxCount",
        )
    return result


def _read_instance_types(reader: _Reader) -> tuple[InstanceType, ...]:
    result = []
    for index, raw in enumerate(reader.list_("instanceTypes")):
        item = reader.item("instanceTypes", index, raw)
        instance = InstanceType(
            name=item.str_("name"),
            cpu_request=_check_quantity(item, "cpuRequest", item.str_("cpuRequest")),
            cpu_limit=_check_quantity(item, "cpuLimit", item.str_("cpuLimit")),
            memory_request=_check_quantity(item, "memoryRequest", item.str_("memoryRequest")),
            memory_limit=_check_quantity(item, "memoryLimit", item.str_("memoryLimit")),
            gpu=item.int_("gpu", 0, lo=0, hi=8),
        )
        item.done()
        _check_name(item, "name", "k8s_name", instance.name)
        result.append(instance)
    if not result:
        raise reader.fail("instanceTypes", "is empty", "declare at least one instance type")
    names = [instance.name for instance in result]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise reader.fail("instanceTypes", f"declares {duplicates[0]} twice", "rename one")
    return tuple(result)


def _read_secrets(reader: _Reader) -> tuple[SecretSettings, ...]:
    result = []
    for index, raw in enumerate(reader.list_("secrets", [])):
        item = reader.item("secrets", index, raw)
        name = item.str_("name")
        _check_name(item, "name", "kv_secret", name)
        config_key = item.str_("configKey")
        if not _CONFIG_KEY.fullmatch(config_key):
            raise item.fail("configKey", f"is '{config_key}', not a config key name", "fix it")
        expires = item._get("expiresOn", _MISSING)
        if isinstance(expires, dt.datetime):
            expires = expires.date()
        if isinstance(expires, str):
            try:
                expires = dt.date.fromisoformat(expires)
            except ValueError:
                expires = None
        if not isinstance(expires, dt.date):
            raise item.fail("expiresOn", "must be a date like 2027-12-31", "fix it")
        result.append(
            SecretSettings(
                name=name,
                config_key=config_key,
                content_type=item.str_("contentType"),
                expires_on=expires,
            )
        )
        item.done()
    return tuple(result)


def settings_from_config(
    config: Mapping[str, Any], stack: str, source: str | None = None
) -> Settings:
    """Build validated settings from a stack's raw config (keys like `mlops:aks`)."""
    source = source or f"Pulumi.{stack}.yaml"
    top: dict[str, Any] = {}
    for full_key, value in config.items():
        namespace, _, key = full_key.partition(":")
        if namespace == NAMESPACE:
            top[key] = value
    root = _Reader(top, NAMESPACE, source, sep=":")

    location_value = config.get("azure-native:location")
    if not isinstance(location_value, str):
        raise SettingsError(f"azure-native:location is missing; add it in {source}.")
    location = _check_region(
        _Reader({}, "azure-native", source, sep=":"), "location", location_value
    )

    environment = root.str_("environment", choices=ENVIRONMENTS)
    prefix = root.str_("prefix")
    if not _PREFIX.fullmatch(prefix):
        raise root.fail(
            "prefix",
            f"is '{prefix}' but must be 2-8 lowercase letters or digits starting with a letter",
            "shorten it",
        )
    suffix = root.str_("suffix")
    if not _SUFFIX.fullmatch(suffix):
        raise root.fail(
            "suffix",
            f"is '{suffix}' but must be 3-6 lowercase letters or digits",
            "fix it (it keeps global names unique)",
        )
    names = Names(prefix, environment, suffix)
    for kind, name in names.checked():
        problem = name_problem(kind, name)
        if problem:
            raise root.fail("prefix", f"gives an invalid name: {problem}", "shorten it")

    tags_reader = root.obj("tags", {})
    tags: dict[str, str] = {}
    for key, value in tags_reader.data.items():
        tags_reader.seen.add(key)
        if not isinstance(value, str | int | float) or isinstance(value, bool):
            raise tags_reader.fail(key, f"must be a string, not {value!r}", "quote it")
        if len(key) > 512 or len(str(value)) > 256 or re.search(r"[<>%&\\?/]", key):
            raise tags_reader.fail(key, "is not a valid Azure tag", "shorten it or drop <>%&\\?/")
        tags[key] = str(value)

    # --- network --------------------------------------------------------------------
    net = root.obj("network")
    network = NetworkSettings(
        public_network_access=net.bool_("publicNetworkAccess"),
        allowed_ip_ranges=tuple(
            _check_cidr(net, "allowedIpRanges", value)
            for value in net.str_list("allowedIpRanges", [])
        ),
        private_network=net.bool_("privateNetwork", False),
        address_space=_check_cidr(net, "addressSpace", net.str_("addressSpace", "10.40.0.0/16")),
        aks_subnet=_check_cidr(net, "aksSubnet", net.str_("aksSubnet", "10.40.0.0/20")),
        private_endpoint_subnet=_check_cidr(
            net, "privateEndpointSubnet", net.str_("privateEndpointSubnet", "10.40.16.0/24")
        ),
        aci_subnet=_check_cidr(net, "aciSubnet", net.str_("aciSubnet", "10.40.17.0/24")),
        training_subnet=_check_cidr(
            net, "trainingSubnet", net.str_("trainingSubnet", "10.40.18.0/24")
        ),
        workspace_isolation_mode=net.str_(
            "workspaceIsolationMode", "Disabled", choices=WORKSPACE_ISOLATION
        ),
    )
    net.done()
    space = ipaddress.ip_network(network.address_space)
    for key in ("aksSubnet", "privateEndpointSubnet", "aciSubnet", "trainingSubnet"):
        subnet = ipaddress.ip_network(getattr(network, _snake(key)))
        if not subnet.subnet_of(space):  # type: ignore[arg-type]
            raise net.fail(key, f"({subnet}) is outside addressSpace ({space})", "fix the ranges")

    # --- storage, key vault, registry, monitoring -------------------------------------
    storage = root.obj("storage")
    storage_sku = storage.str_("sku", choices=tuple(sorted(STORAGE_SKUS)))
    containers = storage.str_list("containers", ["batch-scoring"])
    if not containers:
        raise storage.fail("containers", "is empty", "list at least the batch-scoring container")
    for container in containers:
        _check_name(storage, "containers", "blob_container", container)
    storage.done()

    kv = root.obj("keyVault")
    key_vault = KeyVaultSettings(
        sku=kv.str_("sku", "standard", choices=("standard", "premium")),
        soft_delete_retention_days=kv.int_("softDeleteRetentionDays", 90, lo=7, hi=90),
        secrets=_read_secrets(kv),
    )
    kv.done()

    acr = root.obj("containerRegistry")
    acr_sku = acr.str_("sku", choices=ACR_SKUS)
    acr_quarantine = acr.bool_("quarantine", False)
    acr.done()
    # The workspace ACR holds the images Azure ML builds for environments and training;
    # with quarantine on, every pushed image stays unpullable until something marks it
    # verified (PSRule "Azure.ACR.Quarantine"; Learn built-in roles: only
    # AcrQuarantineReader may pull quarantined images), so jobs and deployments would hang.
    if acr_quarantine:
        raise acr.fail(
            "quarantine",
            "is true on the workspace registry, where Azure ML pushes and pulls environment "
            "and training images that quarantine would keep unpullable",
            "set it to false and scan the scoring image in the release pipeline instead",
        )

    monitoring = root.obj("monitoring", {})
    log_retention_days = monitoring.int_("logRetentionDays", 30, lo=30, hi=730)
    monitoring.done()

    # --- training -------------------------------------------------------------------
    tr = root.obj("training")
    training = TrainingSettings(
        compute_name=tr.str_("computeName"),
        vm_size=tr.str_("vmSize"),
        vm_priority=tr.str_("vmPriority", "Dedicated", choices=("Dedicated", "LowPriority")),
        min_nodes=tr.int_("minNodes", 0, lo=0, hi=100),
        max_nodes=tr.int_("maxNodes", lo=1, hi=100),
        idle_seconds_before_scale_down=tr.int_("idleSecondsBeforeScaleDown", 900, lo=60, hi=86400),
    )
    tr.done()
    _check_name(tr, "computeName", "ml_compute", training.compute_name)
    if training.min_nodes > training.max_nodes:
        raise tr.fail(
            "minNodes",
            f"({training.min_nodes}) is above maxNodes ({training.max_nodes})",
            "lower minNodes or raise maxNodes",
        )

    # --- AKS ------------------------------------------------------------------------
    ak = root.obj("aks")
    aks_enabled = ak.bool_("enabled")
    aks = AksSettings(
        enabled=aks_enabled,
        kubernetes_version=ak.opt_str("kubernetesVersion"),
        sku_tier=ak.str_("skuTier", "Free", choices=("Free", "Standard", "Premium")),
        upgrade_channel=ak.str_("upgradeChannel", "stable", choices=UPGRADE_CHANNELS),
        node_os_upgrade_channel=ak.str_(
            "nodeOsUpgradeChannel", "NodeImage", choices=NODE_OS_UPGRADE_CHANNELS
        ),
        max_pods=ak.int_("maxPods", 50, lo=10, hi=250),
        network_policy=ak.str_("networkPolicy", "cilium", choices=("cilium", "calico", "azure")),
        encryption_at_host=ak.bool_("encryptionAtHost", False),
        system_pool=_read_pool(ak, "systemPool", "system", min_floor=1),
        user_pool=_read_pool(ak, "userPool", "azureml", min_floor=0),
        admin_group_object_ids=ak.str_list("adminGroupObjectIds", []),
        authorized_ip_ranges=tuple(
            _check_cidr(ak, "authorizedIpRanges", value)
            for value in ak.str_list("authorizedIpRanges", [])
        ),
        private_cluster=ak.bool_("privateCluster", False),
    )
    ak.done()
    for group in aks.admin_group_object_ids:
        if not _GUID.fullmatch(group):
            raise ak.fail("adminGroupObjectIds", f"has '{group}', not an object id", "fix it")
    if aks.max_pods < 50:
        raise ak.fail("maxPods", f"is {aks.max_pods} but must be at least 50", "raise it")

    # --- Azure ML on Kubernetes -------------------------------------------------------
    inf = root.obj("inference")
    inference = InferenceSettings(
        router_service_type=inf.str_(
            "routerServiceType", "LoadBalancer", choices=ROUTER_SERVICE_TYPES
        ),
        internal_load_balancer=inf.bool_("internalLoadBalancer", False),
        allow_insecure_connections=inf.bool_("allowInsecureConnections"),
        router_ha=inf.bool_("routerHa"),
        ssl_cname=inf.str_("sslCname", ""),
        ssl_secret=inf.str_("sslSecret", ""),
        tls_cert_config_key=inf.str_("tlsCertConfigKey", "inferenceTlsCertPem"),
        tls_key_config_key=inf.str_("tlsKeyConfigKey", "inferenceTlsKeyPem"),
        enable_training=inf.bool_("enableTraining", False),
        namespace=inf.str_("namespace"),
        team_namespaces=inf.str_list("teamNamespaces", []),
        compute_name=inf.str_("computeName"),
        instance_types=_read_instance_types(inf),
        default_instance_type=inf.str_("defaultInstanceType"),
    )
    inf.done()
    _check_name(inf, "computeName", "ml_compute", inference.compute_name)
    for key, value in [("namespace", inference.namespace)] + [
        ("teamNamespaces", team) for team in inference.team_namespaces
    ]:
        _check_name(inf, key, "k8s_name", value)
    all_namespaces = (inference.namespace, *inference.team_namespaces)
    compute_names = [inference.compute_name_for(namespace) for namespace in all_namespaces]
    for team, compute in zip(all_namespaces[1:], compute_names[1:], strict=True):
        _check_name(inf, "teamNamespaces", "ml_compute", compute)
        if compute_names.count(compute) > 1 or compute == training.compute_name:
            raise inf.fail(
                "teamNamespaces",
                f"gives namespace {team} the compute name {compute}, which is already taken",
                "shorten or rename the namespace",
            )
    if len(set(all_namespaces)) != len(all_namespaces) or "azureml" in all_namespaces:
        raise inf.fail(
            "teamNamespaces",
            "repeats a namespace or uses 'azureml' (reserved for the extension)",
            "use distinct names",
        )
    if inference.default_instance_type not in {i.name for i in inference.instance_types}:
        raise inf.fail(
            "defaultInstanceType",
            f"is '{inference.default_instance_type}', which is not in instanceTypes",
            "name one of the declared instance types",
        )
    if inference.tls_enabled and not (inference.ssl_cname and inference.ssl_secret):
        raise inf.fail(
            "allowInsecureConnections",
            "is false but sslCname or sslSecret is empty, so the router has no certificate",
            "set sslCname and sslSecret",
        )
    for key in ("tlsCertConfigKey", "tlsKeyConfigKey"):
        if not _CONFIG_KEY.fullmatch(inf.data.get(key, "inferenceTlsCertPem")):
            raise inf.fail(key, "is not a config key name", "fix it")
    if aks_enabled and inference.router_ha and aks.min_nodes < 3:
        raise inf.fail(
            "routerHa",
            f"needs at least 3 nodes but the AKS pools guarantee only {aks.min_nodes}",
            "raise aks.userPool.minCount or set routerHa to false",
        )

    # --- ACI (QA scoring service) -------------------------------------------------------
    ac = root.obj("aci")
    aci = AciSettings(
        enabled=ac.bool_("enabled"),
        image=ac.str_("image", "diabetes-scoring:latest"),
        cpu=ac.float_("cpu", 1.0, lo=0.1, hi=4.0),
        memory_gb=ac.float_("memoryGb", 1.5, lo=0.1, hi=16.0),
        restart_policy=ac.str_("restartPolicy", "Always", choices=("Always", "OnFailure", "Never")),
        public=ac.bool_("public", True),
        port=ac.int_("port", 5001, lo=1, hi=65535),
        scoring_key_secret=ac.str_("scoringKeySecret", "scoring-api-key"),
    )
    ac.done()
    if aci.enabled and aci.scoring_key_secret not in {s.name for s in key_vault.secrets}:
        raise ac.fail(
            "scoringKeySecret",
            f"names '{aci.scoring_key_secret}', which is not in keyVault.secrets",
            "declare that secret",
        )
    if aci.enabled and not aci.public and not network.private_network:
        raise ac.fail(
            "public",
            "is false but network.privateNetwork is false, so there is no subnet for it",
            "enable network.privateNetwork",
        )

    # --- endpoints, registry, access ---------------------------------------------------
    ep = root.obj("endpoints")
    endpoints = EndpointSettings(
        online_name=ep.str_("onlineName"),
        online_auth_mode=ep.str_("onlineAuthMode", "key", choices=tuple(AUTH_MODES)),
        batch_name=ep.str_("batchName"),
    )
    ep.done()
    _check_name(ep, "onlineName", "ml_endpoint", endpoints.online_name)
    _check_name(ep, "batchName", "ml_endpoint", endpoints.batch_name)
    if endpoints.online_name == endpoints.batch_name:
        raise ep.fail("batchName", "equals onlineName", "give the endpoints distinct names")

    rg = root.obj("modelRegistry")
    registry_location = rg.str_("location", location)
    model_registry = ModelRegistrySettings(
        name=rg.str_("name"),
        create=rg.bool_("create"),
        resource_group=rg.str_("resourceGroup", names.shared_resource_group),
        location=_check_region(rg, "location", registry_location),
        replication_locations=tuple(
            _check_region(rg, "replicationLocations", value)
            for value in rg.str_list("replicationLocations", [])
        ),
        storage_sku=rg.str_(
            "storageSku", "Standard_LRS", choices=("Standard_LRS", "Standard_GRS", "Standard_ZRS")
        ),
    )
    rg.done()
    _check_name(rg, "name", "ml_registry", model_registry.name)
    _check_name(rg, "resourceGroup", "resource_group", model_registry.resource_group)

    acc = root.obj("access", {})
    principal = acc.opt_str("pipelinePrincipalId")
    access = AccessSettings(
        pipeline_principal_id=principal or None,
        pipeline_principal_type=acc.str_(
            "pipelinePrincipalType",
            "ServicePrincipal",
            choices=("ServicePrincipal", "Group", "User"),
        ),
    )
    acc.done()
    loop_section = root.obj("loop", {})
    organization = loop_section.opt_str("devopsOrganization")
    loop_section.done()
    if organization and not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9-]{0,49}", organization):
        raise loop_section.fail(
            "devopsOrganization", f"is '{organization}', not an organization name", "fix it"
        )
    if principal and not _GUID.fullmatch(principal):
        raise acc.fail("pipelinePrincipalId", f"is '{principal}', not an object id", "fix it")

    secret_keys = {s.config_key for s in key_vault.secrets} | {
        inference.tls_cert_config_key,
        inference.tls_key_config_key,
    }
    root.done(allowed_extra=frozenset(secret_keys))

    settings = Settings(
        stack=stack,
        source=source,
        environment=environment,
        location=location,
        prefix=prefix,
        suffix=suffix,
        tags=tags,
        network=network,
        storage_sku=storage_sku,
        storage_containers=tuple(containers),
        key_vault=key_vault,
        acr_sku=acr_sku,
        acr_quarantine=acr_quarantine,
        log_retention_days=log_retention_days,
        training=training,
        aks=aks,
        inference=inference,
        aci=aci,
        endpoints=endpoints,
        model_registry=model_registry,
        access=access,
        loop=LoopSettings(devops_organization=organization),
    )
    _check_cross_rules(settings, root)
    if settings.is_prod:
        _check_prod_rules(settings, root)
    return settings


def _snake(key: str) -> str:
    return re.sub(r"([A-Z])", lambda m: "_" + m.group(1).lower(), key)


def _check_cross_rules(settings: Settings, root: _Reader) -> None:
    """Rules that span several sections and hold in every environment."""
    if settings.network.private_network and settings.acr_sku != "Premium":
        raise root.fail(
            "containerRegistry",
            "must use the Premium SKU because network.privateNetwork needs ACR private endpoints",
            "set containerRegistry.sku to Premium",
        )
    network, aks, inference = settings.network, settings.aks, settings.inference
    if not network.public_network_access and not network.private_network:
        raise root.fail(
            "network",
            "disables public access without a private network, so nothing could reach the platform",
            "enable network.privateNetwork",
        )
    # Learn, "how-to-managed-network", Limitations: "Kubernetes and attached VMs aren't
    # supported in an Azure Machine Learning managed virtual network".
    if network.managed_network and aks.enabled:
        raise root.fail(
            "network",
            f"sets workspaceIsolationMode {network.workspace_isolation_mode} while aks.enabled "
            "is true, but Azure ML does not support Kubernetes compute in a managed network",
            "set network.workspaceIsolationMode to Disabled and network.privateNetwork to true",
        )
    # Firewall ranges do nothing while public network access is off (Learn, "storage-network-
    # security" and Key Vault "network-security": IP rules apply to the public endpoint).
    if network.allowed_ip_ranges and not network.public_network_access:
        raise root.fail(
            "network",
            "lists allowedIpRanges while publicNetworkAccess is false, so the ranges do nothing",
            "empty network.allowedIpRanges or turn public access on",
        )
    if aks.private_cluster and aks.authorized_ip_ranges:
        raise root.fail(
            "aks",
            "lists authorizedIpRanges for a private cluster, whose API server has no public "
            "endpoint to restrict",
            "empty aks.authorizedIpRanges or set aks.privateCluster to false",
        )
    if aks.private_cluster and not network.private_network:
        raise root.fail(
            "aks",
            "makes the API server private without network.privateNetwork, so no agent can reach it",
            "enable network.privateNetwork",
        )
    # The extension's own CLI refuses NodePort together with an internal load balancer
    # (Azure/azure-cli-extensions, partner_extensions/AzureMLKubernetes.py).
    if inference.internal_load_balancer and inference.router_service_type != "LoadBalancer":
        raise root.fail(
            "inference",
            f"sets internalLoadBalancer with routerServiceType {inference.router_service_type}, "
            "but only a LoadBalancer router has a load balancer",
            "set routerServiceType to LoadBalancer or internalLoadBalancer to false",
        )


def _check_prod_rules(settings: Settings, root: _Reader) -> None:
    """The security posture a prod stack must keep (design note §8)."""
    inference, network, aks = settings.inference, settings.network, settings.aks
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
            settings.acr_sku != "Premium",
            "containerRegistry",
            "is not Premium in prod (needed for private link and zone redundancy)",
            "set containerRegistry.sku to Premium",
        ),
        (
            settings.storage_sku not in GEO_REDUNDANT_STORAGE,
            "storage",
            f"uses {settings.storage_sku}, which is not geo-redundant",
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
            raise root.fail(key, problem, fix)


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
