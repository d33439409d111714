"""Locked environments: one human-edited input per environment, one generated lock.

Azure ML builds three environments from this project and each is installed from a lock that
`make locks` generates with `uv pip compile --generate-hashes`, so what the tests and the local
pipeline run install is exactly what Azure ML builds:

| environment | input (edit this)                               | lock (generated)               |
|-------------|-------------------------------------------------|--------------------------------|
| training    | training/requirements.in                        | training/requirements.txt      |
| batch       | scoring/requirements.in + batch-requirements.in | scoring/batch-requirements.txt |
| online      | scoring/requirements.in                         | scoring/requirements.txt       |

Every environment runs Python 3.11 on linux x86_64 (Ubuntu 22.04, glibc 2.35): the online
image's base is `minimal-py311-inference` (scoring/Dockerfile), training and batch run the conda
file's `python=3.11` on `openmpi4.1.0-ubuntu22.04` (pipelines.azure.entities). The locks are
resolved for that interpreter and platform, whatever machine runs `make locks`.

Versions shared with the ops environment come from uv.lock, the one place they are set: the
training lock takes every package it shares with uv.lock (training also runs in the ops venv),
the batch and online locks the packages in SHARED_PACKAGES (the inference server pins an older
OpenTelemetry than the ops venv, design note §3). So a model trained with one scikit-learn is
served by the same one, and numpy, pandas, pyarrow agree in training, batch and online.

A lock's first line records the digest of its inputs: `check_lock` finds a lock that is stale,
unhashed, not pinned, or at odds with uv.lock without calling PyPI. Standard library only at
import time (`packaging` is imported where it is used): the CLI and the steps import this.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
UV_LOCK = "uv.lock"
PYTHON = "3.11"
# Ubuntu 22.04 ships glibc 2.35: wheels for newer glibc would not load in Azure ML's images.
PLATFORM = "x86_64-manylinux_2_35"
# Packages whose version must be one across training, batch, online and the ops venv: the model's
# pickle (scikit-learn, scipy, numpy), the data it reads (pandas, pyarrow), MLflow where present.
SHARED_PACKAGES = ("numpy", "pandas", "pyarrow", "scikit-learn", "scipy", "mlflow", "mlflow-skinny")
HEADER_PREFIX = "# mlops-lock "
COMMAND = "make locks"

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*")


class LockError(ValueError):
    """A lock or an input that cannot be used as it is."""


@dataclass(frozen=True)
class LockSpec:
    """One environment: its inputs, its lock, and what it takes from uv.lock.

    `shared` lists the packages pinned to uv.lock's versions; None takes every package of
    uv.lock the environment needs.
    """

    name: str
    inputs: tuple[str, ...]
    lock: str
    shared: tuple[str, ...] | None
    python: str = PYTHON
    platform: str = PLATFORM

    def lock_path(self, root: Path = REPO_ROOT) -> Path:
        return root / self.lock

    def input_texts(self, root: Path = REPO_ROOT) -> dict[str, str]:
        return {name: (root / name).read_text() for name in self.inputs}


TRAINING = LockSpec("training", ("training/requirements.in",), "training/requirements.txt", None)
BATCH = LockSpec(
    "batch",
    ("scoring/requirements.in", "scoring/batch-requirements.in"),
    "scoring/batch-requirements.txt",
    SHARED_PACKAGES,
)
ONLINE = LockSpec(
    "online", ("scoring/requirements.in",), "scoring/requirements.txt", SHARED_PACKAGES
)
LOCKS = (TRAINING, BATCH, ONLINE)


@dataclass(frozen=True)
class Pin:
    """One locked package: `name==version` and the hashes pip and uv check it against."""

    name: str  # canonical (PEP 503)
    requirement: str  # as written, e.g. `scikit-learn==1.7.2`
    version: str
    hashes: tuple[str, ...]

    @property
    def pip_line(self) -> str:
        """The requirement-file line pip installs it from, hashes included."""
        return " ".join([self.requirement, *(f"--hash={value}" for value in self.hashes)])


def canonical(name: str) -> str:
    """The PEP 503 normalized name (`Scikit_Learn` -> `scikit-learn`)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_lines(text: str) -> list[str]:
    """The logical lines of a requirements file: continuations joined, comments and blanks gone."""
    lines: list[str] = []
    pending = ""
    for raw in text.splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = (pending + line).strip()
        pending = ""
        if line:
            lines.append(" ".join(line.split()))
    if pending.strip():
        lines.append(" ".join(pending.split()))
    return lines


def input_digest(spec: LockSpec, inputs: Mapping[str, str]) -> str:
    """What a lock was generated from: its inputs' requirement lines, Python, platform, sharing.

    Comments are left out, so a note in an input does not make its lock stale.
    """
    parts = [f"python={spec.python}", f"platform={spec.platform}"]
    parts.append("shared=" + (",".join(spec.shared) if spec.shared is not None else "uv.lock"))
    for name in spec.inputs:
        parts.append(f"input={name}")
        parts.extend(requirement_lines(inputs[name]))
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def header(spec: LockSpec, inputs: Mapping[str, str]) -> str:
    """The lock's first lines: what generated it, from what, and the inputs' digest."""
    return (
        f"{HEADER_PREFIX}sha256={input_digest(spec, inputs)} python={spec.python} "
        f"platform={spec.platform}\n"
        f"# The {spec.name} environment, generated by `{COMMAND}` from {' and '.join(spec.inputs)}"
        ": edit those, never this file.\n"
    )


def recorded_digest(lock_text: str) -> str | None:
    """The input digest a lock's header records, or None when it has no header."""
    first = lock_text.splitlines()[:1]
    if not first or not first[0].startswith(HEADER_PREFIX):
        return None
    fields = dict(
        part.split("=", 1) for part in first[0][len(HEADER_PREFIX) :].split() if "=" in part
    )
    return fields.get("sha256")


def parse_pin(line: str) -> Pin:
    """One logical lock line: `name==version --hash=sha256:...`; LockError when it is not that."""
    words = line.split()
    requirement, options = words[0], words[1:]
    hashes = []
    for option in options:
        if not option.startswith("--hash="):
            raise LockError(f"`{line[:80]}` has an option other than --hash")
        hashes.append(option.removeprefix("--hash="))
    name_match = _NAME.match(requirement)
    name, _, version = requirement.partition("==")
    if name_match is None or not version or re.search(r"[*<>=!~,;]", version):
        raise LockError(f"`{requirement}` is not pinned to one version with ==")
    base = name.split("[", 1)[0]
    if not hashes:
        raise LockError(f"`{requirement}` has no --hash")
    return Pin(canonical(base), requirement, version, tuple(hashes))


def parse_lock(lock_text: str) -> dict[str, Pin]:
    """Every pin of a lock by canonical name; LockError on a line that is not a hashed pin."""
    pins: dict[str, Pin] = {}
    for line in requirement_lines(lock_text):
        pin = parse_pin(line)
        if pin.name in pins:
            raise LockError(f"{pin.name} is pinned twice")
        pins[pin.name] = pin
    return pins


def pip_lines(lock_text: str) -> list[str]:
    """A lock as requirement lines with their hashes (a conda file's pip section)."""
    return [pin.pip_line for pin in parse_lock(lock_text).values()]


def uv_lock_versions(uv_lock_text: str, python: str = PYTHON) -> dict[str, str]:
    """The versions uv.lock installs for `python` (at its lowest patch), by canonical name.

    uv.lock may hold a package twice, once per `resolution-markers` fork (numpy for 3.11 and for
    3.12): the fork whose markers hold for `python` wins. The project itself is left out.
    """
    from packaging.markers import Marker

    full = python if python.count(".") == 2 else f"{python}.0"
    environment = {
        "python_version": ".".join(full.split(".")[:2]),
        "python_full_version": full,
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": "x86_64",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
    }
    versions: dict[str, str] = {}
    for package in tomllib.loads(uv_lock_text).get("package", []):
        source = package.get("source", {})
        if "editable" in source or "virtual" in source:
            continue
        markers = package.get("resolution-markers")
        if markers and not any(Marker(marker).evaluate(environment) for marker in markers):
            continue
        versions[canonical(package["name"])] = str(package["version"])
    return versions


def constraint_lines(spec: LockSpec, versions: Mapping[str, str]) -> list[str]:
    """The `name==version` constraints an environment is compiled with, from uv.lock."""
    names = sorted(versions) if spec.shared is None else sorted(map(canonical, spec.shared))
    return [f"{name}=={versions[name]}" for name in names if name in versions]


def check_lock(
    spec: LockSpec, lock_text: str, inputs: Mapping[str, str], versions: Mapping[str, str]
) -> list[str]:
    """Why `lock_text` is not a current lock of `spec` (empty when it is), without PyPI.

    Current means: its header records the digest of the inputs; every line is a hashed `==`
    pin; every input requirement is satisfied by a pin; and every package it takes from
    uv.lock (all of them for training) has uv.lock's version.
    """
    from packaging.requirements import InvalidRequirement, Requirement

    problems = []
    regenerate = f"run `{COMMAND}`"
    if recorded_digest(lock_text) != input_digest(spec, inputs):
        problems.append(
            f"{spec.lock} was not generated from the current {' and '.join(spec.inputs)}; "
            + regenerate
        )
    try:
        pins = parse_lock(lock_text)
    except LockError as error:
        return [*problems, f"{spec.lock}: {error}; {regenerate}"]
    for name in spec.inputs:
        for line in requirement_lines(inputs[name]):
            try:
                requirement = Requirement(line)
            except InvalidRequirement as error:
                problems.append(f"{name}: `{line}` is not a requirement ({error})")
                continue
            pin = pins.get(canonical(requirement.name))
            if pin is None:
                problems.append(f"{spec.lock} lacks {requirement.name} ({name}); {regenerate}")
            elif not requirement.specifier.contains(pin.version, prereleases=True):
                problems.append(
                    f"{spec.lock} pins {pin.requirement}, outside `{line}` ({name}); {regenerate}"
                )
    taken = pins if spec.shared is None else [canonical(n) for n in spec.shared if n in pins]
    for name in taken:
        if name in versions and pins[name].version != versions[name]:
            problems.append(
                f"{spec.lock} pins {pins[name].requirement} but uv.lock has {versions[name]}; "
                + regenerate
            )
    return problems


def disagreements(locks: Mapping[str, Mapping[str, Pin]], names: Iterable[str]) -> list[str]:
    """Shared packages pinned to different versions in different locks."""
    problems = []
    for name in map(canonical, names):
        found = {lock: pins[name].version for lock, pins in locks.items() if name in pins}
        if len(set(found.values())) > 1:
            listed = ", ".join(f"{version} in {lock}" for lock, version in sorted(found.items()))
            problems.append(f"{name} differs between the locks: {listed}; run `{COMMAND}`")
    return problems


def check_all(root: Path = REPO_ROOT) -> list[str]:
    """Every problem of every lock of the project, and shared packages that disagree."""
    versions = uv_lock_versions((root / UV_LOCK).read_text())
    problems: list[str] = []
    parsed: dict[str, dict[str, Pin]] = {}
    for spec in LOCKS:
        path = spec.lock_path(root)
        if not path.is_file():
            problems.append(f"{spec.lock} is missing; run `{COMMAND}`")
            continue
        text = path.read_text()
        problems += check_lock(spec, text, spec.input_texts(root), versions)
        try:
            parsed[spec.lock] = parse_lock(text)
        except LockError:
            continue
    return problems + disagreements(parsed, SHARED_PACKAGES)


# -- generating (make locks) --------------------------------------------------------------------


def compile_command(
    uv: str, spec: LockSpec, constraints: Path, *, upgrade: bool = False
) -> list[str]:
    """The `uv pip compile` that locks `spec`, run from the repository root.

    The existing lock is the output file, so uv keeps its pins unless an input or uv.lock moved
    them (or `upgrade`).
    """
    return [
        uv, "pip", "compile", "--quiet", "--generate-hashes", "--no-header",
        "--python-version", spec.python, "--python-platform", spec.platform,
        "--constraint", str(constraints),
        *(["--upgrade"] if upgrade else []),
        *spec.inputs,
        "--output-file", spec.lock,
    ]  # fmt: skip


def generate(uv: str, spec: LockSpec, root: Path = REPO_ROOT, *, upgrade: bool = False) -> Path:
    """Regenerate one lock from its inputs and uv.lock; LockError when uv cannot resolve it."""
    versions = uv_lock_versions((root / UV_LOCK).read_text())
    inputs = spec.input_texts(root)
    with tempfile.TemporaryDirectory(prefix="mlops-locks-") as scratch:
        constraints = Path(scratch) / "uv-lock-constraints.txt"
        constraints.write_text("\n".join(constraint_lines(spec, versions)) + "\n")
        result = subprocess.run(
            compile_command(uv, spec, constraints, upgrade=upgrade),
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise LockError(
                f"uv cannot lock the {spec.name} environment with uv.lock's versions: "
                f"{result.stderr.strip()}\nchange {' or '.join(spec.inputs)} (or the bounds in "
                "pyproject.toml, then `uv lock`) and run it again"
            )
        body = spec.lock_path(root).read_text().replace(f"-c {constraints}", f"-c {UV_LOCK}")
    path = spec.lock_path(root)
    path.write_text(header(spec, inputs) + body)
    return path


def main(argv: Sequence[str] | None = None) -> int:
    """`make locks`: regenerate every lock, then check them all."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.locks", description=__doc__)
    parser.add_argument("--uv", default="uv", help="the uv executable (default: uv on PATH)")
    parser.add_argument("--upgrade", action="store_true", help="also move unconstrained pins")
    parser.add_argument("--check", action="store_true", help="only check, generate nothing")
    args = parser.parse_args(argv)
    if not args.check:
        for spec in LOCKS:
            try:
                path = generate(args.uv, spec, upgrade=args.upgrade)
            except LockError as error:
                print(f"error: {error}", file=sys.stderr)
                return 1
            print(f"locked {spec.name}: {path.relative_to(REPO_ROOT)}")
    problems = check_all()
    for problem in problems:
        print(f"error: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
