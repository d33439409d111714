"""Blob storage access with the real `azure-storage-blob` SDK: Azurite locally, the workspace
storage on Azure, one interface for both.

On Azure the container is the one behind the workspace's default datastore
(`workspaceblobstore`), where Azure ML's data collector writes (Learn,
"how-to-collect-production-data", "Store collected data in Blob Storage"), reached with
`DefaultAzureCredential`: the identity needs `Storage Blob Data Reader` on it to monitor and
`Storage Blob Data Contributor` to write feedback data sets. No account keys are used on Azure.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError

if TYPE_CHECKING:
    from azure.storage.blob import ContainerClient

    from pipelines.settings import Settings

# Locally the container mirrors the name of the datastore it stands in for.
LOCAL_CONTAINER = "workspaceblobstore"


@dataclass(frozen=True)
class BlobItem:
    """A blob's name and size."""

    name: str
    size: int


class BlobStore:
    """One blob container."""

    def __init__(self, container: ContainerClient, description: str) -> None:
        self.container = container
        self.description = description

    def list(self, prefix: str) -> Iterator[BlobItem]:
        """Blobs whose names start with `prefix`, in name order."""
        from azure.core.exceptions import AzureError

        try:
            for blob in self.container.list_blobs(name_starts_with=prefix):
                yield BlobItem(blob.name, int(blob.size or 0))
        except AzureError as error:
            raise self._error("list", prefix, error) from error

    def read(self, name: str) -> bytes:
        """A blob's content."""
        from azure.core.exceptions import AzureError

        try:
            return bytes(self.container.download_blob(name).readall())
        except AzureError as error:
            raise self._error("read", name, error) from error

    def write(self, name: str, content: bytes, *, overwrite: bool = False) -> None:
        """Write a blob in one call (all or nothing); refuse to replace one unless asked."""
        from azure.core.exceptions import AzureError, ResourceExistsError

        try:
            self.container.upload_blob(name, content, overwrite=overwrite)
        except ResourceExistsError as error:
            raise MlopsError(
                f"{name} already exists in {self.description}; nothing was overwritten"
            ) from error
        except AzureError as error:
            raise self._error("write", name, error) from error

    def exists(self, name: str) -> bool:
        """Whether a blob of that name exists."""
        return bool(self.container.get_blob_client(name).exists())

    def _error(self, verb: str, name: str, error: Any) -> MlopsError:
        reason = str(getattr(error, "reason", None) or error).splitlines()[0]
        return MlopsError(
            f"could not {verb} {name} in {self.description} ({reason}); check that the storage "
            "is reachable and that your identity has a Storage Blob Data role on it"
        )


def local_store(settings: Settings) -> BlobStore:
    """The local target's store: a container in this state directory's Azurite (started now)."""
    from azure.core.exceptions import ResourceExistsError
    from azure.storage.blob import BlobServiceClient

    from pipelines.datastore import azurite

    server = azurite.ensure_running(settings)
    service = BlobServiceClient.from_connection_string(server.connection_string)
    container = service.get_container_client(LOCAL_CONTAINER)
    with contextlib.suppress(ResourceExistsError):
        container.create_container()
    return BlobStore(container, f"the local blob storage (Azurite on 127.0.0.1:{server.port})")


def azure_store(ml_client: Any) -> BlobStore:
    """The workspace's default blob datastore, with DefaultAzureCredential."""
    from azure.identity import DefaultAzureCredential
    from azure.storage.blob import BlobServiceClient

    datastore = ml_client.datastores.get_default()
    account = datastore.account_name
    url = f"{datastore.protocol}://{account}.blob.{datastore.endpoint}"
    service = BlobServiceClient(url, credential=DefaultAzureCredential())
    return BlobStore(
        service.get_container_client(datastore.container_name),
        f"the workspace storage ({account}/{datastore.container_name})",
    )
