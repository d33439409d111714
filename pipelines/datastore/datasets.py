"""Versioned training data sets built from labelled feedback, with their lineage.

A version is the whole training table (the data the serving model was trained on, plus the
labelled production rows) and a lineage record, stored in the blob store as
`training-data/<name>/<version>/data.csv` and `.../lineage.json`. The lineage file is written
last: a version exists only once both are there, so a failed write leaves no version behind.
`mlops run --data <name>:<version>` trains on it locally; on Azure the same table is also
registered as the data asset `azureml:<name>:<version>`, and its BlobCreated event under
`training-data/` starts the retrain pipeline (docs/monitoring.md).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pipelines.errors import MlopsError

if TYPE_CHECKING:
    import pandas as pd

    from pipelines.datastore.store import BlobStore

PREFIX = "training-data"
DATA_FILE = "data.csv"
LINEAGE_FILE = "lineage.json"
# On Azure the same version is the data asset `azureml:<name>:<version>` (mlops feedback).
_REF = re.compile(r"^(?:azureml:)?(?P<name>[a-z0-9][a-z0-9-]{0,62}):(?P<version>[1-9]\d*)$")


@dataclass(frozen=True)
class DataSetRef:
    """`<name>:<version>` of a training data set."""

    name: str
    version: int

    def __str__(self) -> str:
        return f"{self.name}:{self.version}"

    @property
    def folder(self) -> str:
        """`training-data/<name>/<version>/`."""
        return f"{PREFIX}/{self.name}/{self.version}/"

    @property
    def data_blob(self) -> str:
        """The table's blob."""
        return self.folder + DATA_FILE

    @property
    def lineage_blob(self) -> str:
        """The lineage record's blob."""
        return self.folder + LINEAGE_FILE


def feedback_name() -> str:
    """The labelled-feedback data set, named after the model definition: `diabetes-feedback`."""
    from training.spec import current_spec

    return current_spec().asset_name("feedback")


def parse_ref(text: str) -> DataSetRef | None:
    """`diabetes-feedback:3` (or `azureml:diabetes-feedback:3`) → DataSetRef; anything else (a
    file path, say) → None."""
    match = _REF.match(text.strip())
    if match is None:
        return None
    return DataSetRef(match.group("name"), int(match.group("version")))


def versions(store: BlobStore, name: str) -> list[int]:
    """The complete versions of a data set (those with a lineage record), ascending."""
    found = set()
    for blob in store.list(f"{PREFIX}/{name}/"):
        parts = blob.name.split("/")
        if len(parts) == 4 and parts[3] == LINEAGE_FILE and parts[2].isdigit():
            found.add(int(parts[2]))
    return sorted(found)


def write_version(
    store: BlobStore,
    name: str,
    table: pd.DataFrame,
    lineage: dict[str, Any],
    before_complete: Callable[[DataSetRef, dict[str, Any]], None] | None = None,
) -> DataSetRef:
    """Store the table as the data set's next version; the lineage record goes last.

    `before_complete(ref, record)` runs between the two (Azure: register the data asset); if it
    fails, the version stays incomplete and the next write replaces its table.
    """
    existing = versions(store, name)
    ref = DataSetRef(name, (existing[-1] if existing else 0) + 1)
    buffer = io.StringIO()
    table.to_csv(buffer, index=False)
    store.write(ref.data_blob, buffer.getvalue().encode("utf-8"), overwrite=True)
    record = {"data_set": str(ref), **lineage}
    if before_complete is not None:
        before_complete(ref, record)
    store.write(ref.lineage_blob, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return ref


def read_version(store: BlobStore, ref: DataSetRef) -> tuple[pd.DataFrame, dict[str, Any]]:
    """A version's table and lineage record."""
    import pandas as pd

    if not store.exists(ref.lineage_blob):
        known = ", ".join(str(v) for v in versions(store, ref.name)) or "none"
        raise MlopsError(
            f"training data set {ref} does not exist in {store.description} (versions of "
            f"{ref.name}: {known}); create one with `mlops feedback --labels FILE`"
        )
    lineage = json.loads(store.read(ref.lineage_blob))
    table = pd.read_csv(io.BytesIO(store.read(ref.data_blob)))
    return table, lineage
