"""The shared registry behind ModelRegistry: promotion with every tag, pointer, verified bytes."""

import shutil
from pathlib import Path

import pytest

from pipelines.azure.registry import PRODUCTION_TAG, AzureModelRegistry
from pipelines.errors import MlopsError
from pipelines.registry import TAG_DIGEST, TAG_GOLDEN, ModelRegistry
from scoring.model_bundle import verify_bundle
from tests.azure.conftest import MODEL, REGISTRY, Store, World


def test_registration_shares_the_workspace_version_with_its_job_and_every_tag(
    store: Store,
) -> None:
    """models.share, not a re-upload: the registry's copy keeps the training run as its job."""
    shared = store.log.of("workspace.models.share")
    assert [(c.kwargs["name"], c.kwargs["version"]) for c in shared] == [(MODEL, "1"), (MODEL, "2")]
    assert {c.kwargs["registry_name"] for c in shared} == {REGISTRY}
    assert store.log.of("registry.models.create_or_update") == []  # nothing uploaded
    workspace = ModelRegistry(store.settings.tracking_uri, MODEL).get(f"{MODEL}:1")
    model = store.shared.versions[(MODEL, "1")]
    assert model.job_name == workspace.run_id == store.v1.run_id
    for key in (TAG_DIGEST, TAG_GOLDEN, "run_id", "data_sha256", "git_commit", "gate.decision"):
        assert model.tags[key] == workspace.tags[key]
    assert model.tags["source"] == workspace.tags["source"] == "dev/test"
    assert store.v1.source == f"azureml://registries/{REGISTRY}/models/{MODEL}/versions/1"
    assert store.goldens[store.v1.ref]["predictions"]  # read back from the shared registry


def test_a_shared_copy_with_other_bytes_is_refused(world: World, tmp_path: Path) -> None:
    """Sharing is verified: the registry's copy must hold the bundle the workspace registered."""
    from types import SimpleNamespace

    from tests.azure.fakes import FakeRegistry, FakeWorkspaceModels

    store = world.store
    in_workspace = ModelRegistry(store.settings.tracking_uri, MODEL).get(f"{MODEL}:1")
    empty = FakeRegistry(tmp_path / "registry", world.log)  # its own files: nothing shared
    models = FakeWorkspaceModels(store.settings.tracking_uri, {REGISTRY: empty}, world.log)
    real_share = models.share

    def tampered(*args: object, **kwargs: object) -> object:
        shared = real_share(*args, **kwargs)  # type: ignore[arg-type]
        manifest = next(Path(shared.path).rglob("manifest.json"))
        victim = next(p for p in manifest.parent.rglob("*") if p.is_file() and p != manifest)
        victim.write_bytes(victim.read_bytes() + b"x")
        return shared

    models.share = tampered  # type: ignore[method-assign]
    registry = AzureModelRegistry(
        store.settings.tracking_uri,
        MODEL,
        empty,  # type: ignore[arg-type]
        REGISTRY,
        workspace=SimpleNamespace(models=models),  # type: ignore[arg-type]
    )
    with pytest.raises(MlopsError, match="failed its integrity check"):
        registry.promote(in_workspace)


def test_promotion_is_idempotent_and_refuses_a_different_model(world: World) -> None:
    store = world.store
    tracking_registry = AzureModelRegistry(
        store.settings.tracking_uri,
        MODEL,
        world.clients.shared,
        REGISTRY,  # type: ignore[arg-type]
    )
    in_workspace = ModelRegistry(store.settings.tracking_uri, MODEL).get(f"{MODEL}:1")
    again = tracking_registry.promote(in_workspace)
    assert again.digest == in_workspace.digest
    assert world.log.of("registry.models.create_or_update") == []
    key = (MODEL, "1")
    world.clients.shared.versions[key].tags[TAG_DIGEST] = "0" * 64
    with pytest.raises(MlopsError, match="already holds diabetes-ridge:1 with another model"):
        tracking_registry.promote(in_workspace)


def test_production_pointer_moves_and_rolls_back(world: World) -> None:
    registry = world.registry()
    assert registry.production() is None
    with pytest.raises(MlopsError, match="no production version yet"):
        registry.get(f"{MODEL}@production")
    registry.set_production(registry.get("1"))
    registry.set_production(registry.get("2"))
    assert registry.production().version == "2"
    assert registry.get(f"{MODEL}@production").version == "2"
    stored = world.clients.shared.versions[(MODEL, "2")]
    assert stored.tags["mlops.previous_production"] == "1"
    registry.set_production(registry.get(f"{MODEL}:1"))  # a rollback is a newer write
    assert registry.production().version == "1"
    listed = registry.versions()
    assert [v.version for v in listed] == ["2", "1"]
    assert [v.in_production for v in listed] == [False, True]
    assert PRODUCTION_TAG in stored.tags


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        (f"{MODEL}:9", "has no version '9'"),
        (f"{MODEL}@staging", "knows only the 'production' pointer"),
        ("not a ref!", "is not a model reference"),
    ],
)
def test_bad_references(world: World, reference: str, message: str) -> None:
    with pytest.raises(MlopsError, match=message):
        world.registry().get(reference)


def test_download_verifies_the_registered_digest(world: World, tmp_path: Path) -> None:
    registry = world.registry()
    version = registry.get("1")
    bundle = registry.download(version, tmp_path / "ok")
    assert verify_bundle(bundle) == version.digest
    # Tamper with a copy of the stored bundle.
    stored = world.clients.shared.versions[(MODEL, "1")]
    tampered = tmp_path / "tampered" / Path(stored.path).name
    shutil.copytree(stored.path, tampered)
    (tampered / "fast_path.json").write_text("{}")
    stored.path = str(tampered)
    with pytest.raises(MlopsError, match="failed its integrity check"):
        registry.download(version, tmp_path / "bad")


def test_a_read_only_registry_does_not_register(world: World) -> None:
    with pytest.raises(MlopsError, match="training workspace"):
        world.registry().register("run", {TAG_DIGEST: "x"})
