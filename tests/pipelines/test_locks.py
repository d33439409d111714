"""The environment locks: current, hashed, pinned, and one version of each shared package."""

from __future__ import annotations

import re
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from pipelines import locks
from pipelines.locks import (
    BATCH,
    LOCKS,
    ONLINE,
    SHARED_PACKAGES,
    TRAINING,
    LockError,
    LockSpec,
    check_all,
    check_lock,
    disagreements,
    header,
    parse_lock,
    uv_lock_versions,
)
from pipelines.settings import PROJECT_ROOT

UV_LOCK = (PROJECT_ROOT / "uv.lock").read_text()
SPEC = LockSpec("demo", ("demo.in",), "demo.txt", ("numpy", "scikit-learn"))
INPUT = {"demo.in": "# top level\nscikit-learn\nnumpy>=2\n"}
VERSIONS = {"numpy": "2.3.2", "scikit-learn": "1.7.2", "azure-core": "1.41.0"}
BODY = (
    "azure-core==1.40.0 \\\n    --hash=sha256:01\n    # via x\n"
    "numpy==2.3.2 \\\n    --hash=sha256:02 \\\n    --hash=sha256:03\n"
    "scikit-learn==1.7.2 \\\n    --hash=sha256:04\n    # via\n    #   -c uv.lock\n"
)


def lock_text(body: str = BODY, inputs: dict[str, str] = INPUT, spec: LockSpec = SPEC) -> str:
    return header(spec, inputs) + body


def test_every_checked_in_lock_is_current_hashed_and_agrees_with_uv_lock() -> None:
    assert check_all() == []


def test_the_shared_packages_have_one_version_everywhere_and_it_is_uv_locks() -> None:
    expected = uv_lock_versions(UV_LOCK)
    for spec in LOCKS:
        pins = parse_lock(spec.lock_path().read_text())
        for name in ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy"):
            assert pins[name].version == expected[name], (spec.lock, name)
    training = parse_lock(TRAINING.lock_path().read_text())
    assert training["mlflow-skinny"].version == expected["mlflow-skinny"]


def test_training_takes_every_package_it_shares_with_uv_lock() -> None:
    expected = uv_lock_versions(UV_LOCK)
    pins = parse_lock(TRAINING.lock_path().read_text())
    assert {"azure-ai-ml", "azureml-mlflow", "azure-core"} <= set(pins)
    assert all(pin.version == expected[name] for name, pin in pins.items() if name in expected)


def test_a_good_lock_has_no_problem() -> None:
    assert check_lock(SPEC, lock_text(), INPUT, VERSIONS) == []


def test_a_comment_in_the_input_does_not_make_the_lock_stale() -> None:
    noted = {"demo.in": INPUT["demo.in"] + "# why numpy\n"}
    assert check_lock(SPEC, lock_text(), noted, VERSIONS) == []


def test_an_edited_input_makes_the_lock_stale() -> None:
    edited = {"demo.in": INPUT["demo.in"] + "orjson\n"}
    problems = check_lock(SPEC, lock_text(), edited, VERSIONS)
    assert problems[0] == "demo.txt was not generated from the current demo.in; run `make locks`"
    assert "demo.txt lacks orjson (demo.in); run `make locks`" in problems


def test_another_python_or_platform_makes_the_lock_stale() -> None:
    for spec in (replace(SPEC, python="3.12"), replace(SPEC, platform="aarch64-manylinux_2_35")):
        assert "was not generated from the current" in check_lock(spec, lock_text(), INPUT, {})[0]


def test_a_lock_without_its_header_is_stale() -> None:
    assert check_lock(SPEC, BODY, INPUT, VERSIONS) == [
        "demo.txt was not generated from the current demo.in; run `make locks`"
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ("numpy>=2.3 --hash=sha256:02\n", "`numpy>=2.3` is not pinned to one version with =="),
        ("numpy==2.* --hash=sha256:02\n", "`numpy==2.*` is not pinned to one version with =="),
        ("numpy==2.3.2\n", "`numpy==2.3.2` has no --hash"),
        (
            "numpy==2.3.2 --no-deps --hash=sha256:02\n",
            "`numpy==2.3.2 --no-deps --hash=sha256:02` has an option other than --hash",
        ),
        ("numpy==2.3.2 --hash=sha256:02\nnumpy==2.3.2 --hash=sha256:02\n", "numpy is pinned twice"),
    ],
)
def test_a_line_that_is_not_a_hashed_pin_is_refused(body: str, error: str) -> None:
    problems = check_lock(SPEC, lock_text(body), INPUT, VERSIONS)
    assert problems == [f"demo.txt: {error}; run `make locks`"]
    with pytest.raises(LockError, match=re.escape(error)):
        parse_lock(body)


def test_a_pin_outside_the_input_requirement_is_reported() -> None:
    narrowed = {"demo.in": "scikit-learn\nnumpy>=2.4\n"}
    problems = check_lock(SPEC, lock_text(inputs=narrowed), narrowed, VERSIONS)
    assert problems == [
        "demo.txt pins numpy==2.3.2, outside `numpy>=2.4` (demo.in); run `make locks`"
    ]


def test_a_shared_package_at_another_version_than_uv_lock_is_reported() -> None:
    moved = {**VERSIONS, "numpy": "2.4.6"}
    assert check_lock(SPEC, lock_text(), INPUT, moved) == [
        "demo.txt pins numpy==2.3.2 but uv.lock has 2.4.6; run `make locks`"
    ]


def test_only_training_takes_every_package_from_uv_lock() -> None:
    # azure-core is 1.40.0 in the lock and 1.41.0 in uv.lock: not shared for online/batch.
    assert check_lock(SPEC, lock_text(), INPUT, VERSIONS) == []
    everything = replace(SPEC, shared=None)
    assert check_lock(everything, lock_text(spec=everything), INPUT, VERSIONS) == [
        "demo.txt pins azure-core==1.40.0 but uv.lock has 1.41.0; run `make locks`"
    ]


def test_locks_that_disagree_on_a_shared_package_are_reported() -> None:
    online = parse_lock("numpy==2.3.2 --hash=sha256:02\npandas==2.3.3 --hash=sha256:05\n")
    batch = parse_lock("numpy==2.3.1 --hash=sha256:06\npandas==2.3.3 --hash=sha256:05\n")
    assert disagreements({"a.txt": online, "b.txt": online}, SHARED_PACKAGES) == []
    assert disagreements({"a.txt": online, "b.txt": batch}, SHARED_PACKAGES) == [
        "numpy differs between the locks: 2.3.2 in a.txt, 2.3.1 in b.txt; run `make locks`"
    ]


def test_a_project_whose_batch_lock_drifted_fails_the_whole_check(tmp_path: Path) -> None:
    for path in [*{name for spec in LOCKS for name in (*spec.inputs, spec.lock)}, "uv.lock"]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text((PROJECT_ROOT / path).read_text())
    assert check_all(tmp_path) == []
    drifted = BATCH.lock_path(tmp_path)
    numpy = parse_lock(drifted.read_text())["numpy"]
    drifted.write_text(drifted.read_text().replace(numpy.requirement, "numpy==2.2.6"))
    problems = check_all(tmp_path)
    assert f"{BATCH.lock} pins numpy==2.2.6 but uv.lock has {numpy.version}" in problems[0]
    assert problems[-1].startswith("numpy differs between the locks: ")
    ONLINE.lock_path(tmp_path).unlink()
    assert f"{ONLINE.lock} is missing; run `make locks`" in check_all(tmp_path)


UV_LOCK_FORKS = """
version = 1
[[package]]
name = "azure-mlops-template"
version = "0.1.0"
source = { editable = "." }
[[package]]
name = "NumPy"
version = "2.3.2"
resolution-markers = ["python_full_version < '3.12'"]
[[package]]
name = "numpy"
version = "2.5.5"
resolution-markers = ["python_full_version >= '3.12'"]
[[package]]
name = "scikit_learn"
version = "1.7.2"
"""


def test_uv_lock_versions_take_the_fork_of_the_target_python() -> None:
    assert uv_lock_versions(UV_LOCK_FORKS, "3.11") == {"numpy": "2.3.2", "scikit-learn": "1.7.2"}
    assert uv_lock_versions(UV_LOCK_FORKS, "3.12")["numpy"] == "2.5.5"


def test_constraints_are_the_shared_packages_or_everything() -> None:
    versions = {"numpy": "2.3.2", "pandas": "2.3.3", "azure-core": "1.41.0"}
    assert locks.constraint_lines(ONLINE, versions) == ["numpy==2.3.2", "pandas==2.3.3"]
    assert locks.constraint_lines(TRAINING, versions) == [
        "azure-core==1.41.0",
        "numpy==2.3.2",
        "pandas==2.3.3",
    ]


def test_the_compile_command_resolves_for_azure_mls_python_and_platform() -> None:
    command = locks.compile_command("uv", ONLINE, Path("c.txt"))
    assert command[:3] == ["uv", "pip", "compile"]
    assert "--generate-hashes" in command
    assert command[command.index("--python-version") + 1] == "3.11"
    assert command[command.index("--python-platform") + 1] == "x86_64-manylinux_2_35"
    assert command[command.index("--constraint") + 1] == "c.txt"
    assert command[-2:] == ["--output-file", "scoring/requirements.txt"]
    assert "--upgrade" in locks.compile_command("uv", ONLINE, Path("c.txt"), upgrade=True)


FAKE_UV = """#!/bin/sh
# A stand-in for `uv pip compile`: echoes the constraints it was given as hashed pins.
while [ $# -gt 0 ]; do
    case "$1" in
        --constraint) constraints="$2"; shift ;;
        --output-file) output="$2"; shift ;;
    esac
    shift
done
[ -n "$FAKE_UV_FAILS" ] && { echo "No solution found: numpy<2.3.3" >&2; exit 1; }
sed -e 's/$/ --hash=sha256:ab/' "$constraints" > "$output"
echo "    # via -c $constraints" >> "$output"
"""


def test_generate_writes_a_current_lock_with_no_machine_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "uv.lock").write_text(UV_LOCK_FORKS)
    (tmp_path / "demo.in").write_text(INPUT["demo.in"])
    uv = tmp_path / "uv"
    uv.write_text(FAKE_UV)
    uv.chmod(0o755)
    written = locks.generate(str(uv), SPEC, tmp_path).read_text()
    assert check_lock(SPEC, written, INPUT, uv_lock_versions(UV_LOCK_FORKS)) == []
    assert "# via -c uv.lock" in written and "mlops-locks-" not in written
    monkeypatch.setenv("FAKE_UV_FAILS", "1")
    with pytest.raises(LockError, match=r"uv cannot lock the demo environment .* numpy<2\.3\.3"):
        locks.generate(str(uv), SPEC, tmp_path)


def test_make_locks_check_reports_and_exits_non_zero(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert locks.main(["--check"]) == 0
    monkeypatch.setattr(locks, "check_all", lambda: ["numpy differs between the locks"])
    assert locks.main(["--check"]) == 1
    assert "error: numpy differs between the locks" in capsys.readouterr().err


def test_the_module_needs_nothing_but_the_standard_library_at_import() -> None:
    import subprocess

    script = "import sys, pipelines.locks; print('packaging' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert result.stdout.strip() == "False", result.stderr
