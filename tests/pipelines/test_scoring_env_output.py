"""No machine paths and no installer noise in what the commands print."""

from __future__ import annotations

import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pipelines import scoring_env
from pipelines.errors import MlopsError
from pipelines.scoring_env import REQUIREMENTS, ensure_scoring_env, free_port

Mlops = Callable[..., tuple[int, str]]

FAKE_UV = """#!/bin/sh
# A stand-in for uv: `uv venv ... PATH` makes PATH/bin/python; `uv pip install` is chatty.
if [ "$1" = venv ]; then
    for last; do :; done
    mkdir -p "$last/bin" && ln -sf {python} "$last/bin/python"
    echo "Creating virtual environment at: $last"
    exit 0
fi
[ -n "$FAKE_UV_LOG" ] && echo "$@" >> "$FAKE_UV_LOG"
echo "Resolved 57 packages in 1.2s"
for n in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do echo " + package-$n==1.0"; done
if [ -n "$FAKE_UV_FAILS" ]; then
    echo "error: no version of missing-package==9.9 exists"
    exit 1
fi
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project folder with the scoring requirements, uv faked, as the working directory."""
    (tmp_path / "scoring").mkdir()
    shutil.copy(REQUIREMENTS, tmp_path / "scoring" / "requirements.txt")
    uv = tmp_path / "fake-uv"
    uv.write_text(FAKE_UV.format(python=sys.executable))
    uv.chmod(0o755)
    monkeypatch.setenv("UV", str(uv))
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_creating_the_scoring_env_is_quiet_and_names_it_relative(
    project: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    venv = ensure_scoring_env(project)
    out, err = capfd.readouterr()
    printed = out + err
    assert "Creating the scoring environment in .venv-scoring …" in printed
    assert str(project) not in printed
    assert "+ package-1" not in printed and "Resolved 57 packages" not in printed
    assert "The scoring environment is ready." in printed
    assert venv == project / ".venv-scoring"


def test_the_scoring_env_installs_the_lock_with_hashes_required(
    project: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    log = tmp_path / "uv-args.log"
    monkeypatch.setenv("FAKE_UV_LOG", str(log))
    ensure_scoring_env(project)
    (install,) = log.read_text().splitlines()
    assert install.startswith("pip install --python ")
    assert install.endswith(f"--require-hashes -r {project / 'scoring' / 'requirements.txt'}")


def test_a_failed_install_shows_the_tail_of_uv_output(
    project: Path, capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_UV_FAILS", "1")
    failed = (
        r"installing the packages of the scoring environment failed \(exit code 1\); "
        r"uv's last lines are"
    )
    with pytest.raises(MlopsError, match=failed):
        ensure_scoring_env(project)
    printed = "".join(capfd.readouterr())
    assert "error: no version of missing-package==9.9 exists" in printed
    assert "+ package-20" in printed
    assert "+ package-1==" not in printed  # the tail, not the whole list


def test_server_errors_name_paths_relative_to_the_project(project: Path) -> None:
    with pytest.raises(MlopsError, match=r"^model folder absent does not exist"):
        scoring_env.start_inference_server(project / "absent", free_port())


def test_package_prints_where_the_context_is_relative(
    mlops: Mlops, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert mlops("run", "--no-release")[0] == 0
    monkeypatch.chdir(tmp_path)  # the state directory is tmp_path/state
    code, out = mlops("package")
    assert code == 0, out
    assert out.splitlines()[-1] == "state/package/diabetes-ridge-1"
    assert str(tmp_path) not in out


def test_batch_scoring_errors_name_the_model_version_not_a_temporary_folder(
    tmp_path: Path,
) -> None:
    from pipelines.batch import score_folder
    from tests.bundles import train_bundle
    from training.data import bundled_data

    bundle = tmp_path / "scratch" / "model" / "diabetes-ridge" / "3"
    trained = train_bundle("diabetes", bundle)
    features = bundled_data(trained.spec).drop(columns=[trained.spec.target.name])
    inputs = tmp_path / "in"
    inputs.mkdir()
    features.head(3).to_csv(inputs / "a.csv", index=False)
    with pytest.raises(MlopsError) as raised:
        score_folder(bundle, inputs, tmp_path / "out.csv", "0" * 64, model_ref="diabetes-ridge:3")
    message = str(raised.value)
    assert "model bundle diabetes-ridge:3 has digest" in message
    assert str(tmp_path) not in message
