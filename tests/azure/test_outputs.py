"""Stack outputs: found by environment, validated against the contract, errors in one sentence."""

import json
from dataclasses import asdict
from pathlib import Path

import pytest

from infra.outputs import StackOutputs
from pipelines.azure.outputs import StackFiles, example_outputs, read_outputs, redacted
from pipelines.errors import MlopsError
from pipelines.settings import load_settings
from tests.azure.fakes import write_outputs


def files(state_dir: Path) -> StackFiles:
    return StackFiles.from_environment(load_settings())


def test_default_folder_is_under_the_state_directory(state_dir: Path, dev: StackOutputs) -> None:
    write_outputs(state_dir / "stacks", [dev])
    assert files(state_dir).current() == dev


def test_nothing_saved_says_how_to_save_it(state_dir: Path) -> None:
    with pytest.raises(MlopsError, match=r"pulumi stack output --json --show-secrets --stack dev"):
        files(state_dir).current()


def test_several_stacks_need_a_choice(
    state_dir: Path, monkeypatch: pytest.MonkeyPatch, dev: StackOutputs, prod: StackOutputs
) -> None:
    write_outputs(state_dir / "stacks", [dev, prod])
    with pytest.raises(MlopsError, match=r"several stacks.*\(dev, prod\).*MLOPS_STACK=<env>"):
        files(state_dir).current()
    monkeypatch.setenv("MLOPS_STACK", "prod")
    assert files(state_dir).current().environment == "prod"
    monkeypatch.delenv("MLOPS_STACK")
    assert files(state_dir).any().environment == "prod"  # shared settings: any stack will do


def test_explicit_file_wins_and_serves_its_own_environment(
    state_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qa: StackOutputs
) -> None:
    path = tmp_path / "ci-outputs.json"
    path.write_text(json.dumps({k: v for k, v in asdict(qa).items() if v is not None}))
    monkeypatch.setenv("MLOPS_STACK_OUTPUTS", str(path))
    found = files(state_dir)
    assert found.current() == qa
    assert found.outputs_for("qa") == qa
    with pytest.raises(MlopsError, match=r"no stack outputs for the prod environment"):
        found.outputs_for("prod")


def test_a_file_of_another_environment_is_refused(state_dir: Path, dev: StackOutputs) -> None:
    folder = state_dir / "stacks"
    write_outputs(folder, [dev])
    (folder / "dev.json").rename(folder / "prod.json")
    with pytest.raises(MlopsError, match=r"holds the outputs of the dev stack, not prod"):
        files(state_dir).outputs_for("prod")


def test_a_missing_key_is_named(tmp_path: Path, dev: StackOutputs) -> None:
    data = {k: v for k, v in asdict(dev).items() if v is not None}
    del data["workspace_name"]
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MlopsError, match=r"lack workspace_name; run `pulumi up`.*dev.json"):
        read_outputs(path)


def test_masked_secrets_are_refused(tmp_path: Path, dev: StackOutputs) -> None:
    data = {k: v for k, v in asdict(dev).items() if v is not None}
    data["app_insights_connection_string"] = "[secret]"
    path = tmp_path / "dev.json"
    path.write_text(json.dumps(data))
    with pytest.raises(MlopsError, match=r"masked; read outputs with --show-secrets"):
        read_outputs(path)


def test_unreadable_file_is_one_sentence(tmp_path: Path) -> None:
    with pytest.raises(MlopsError, match=r"cannot read the stack outputs file"):
        read_outputs(tmp_path / "missing.json")


def test_example_outputs_follow_the_contract() -> None:
    assert example_outputs("prod").has_kubernetes
    qa = example_outputs("qa", aks=False, aci=True)
    assert qa.has_qa_service and not qa.has_kubernetes
    assert "InstrumentationKey" not in redacted(qa)
