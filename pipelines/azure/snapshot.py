"""What a job's code snapshot must hold: the modules its entry point can reach.

Azure ML uploads only the component's `code` folder (minus ignore files) and runs the command
from it (design note §9): a module imported from outside it, such as `infra.outputs`, fails
with ModuleNotFoundError on the cluster. `reachable_modules` follows every import statement
(module level and inside functions, not under `if TYPE_CHECKING:`) from the entry module
through the snapshot's own packages, so a test can import each of them from the snapshot alone.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path


def tree_digest(root: Path) -> str:
    """sha256 over every file under `root`: relative paths and contents, in sorted order."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def module_file(root: Path, module: str) -> Path | None:
    """The source file of `module` under `root` (a package's __init__.py), or None."""
    base = root.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported_names(tree: ast.AST, package: str) -> list[str]:
    """Every module an import statement names, outside `if TYPE_CHECKING:` blocks."""
    names: list[str] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for statement in node.orelse:
                visit(statement)
            return
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.append(module)
            # `from pipelines.azure import entities` imports a submodule.
            names.extend(f"{module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return names


def _with_parents(module: str) -> list[str]:
    parts = module.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts) + 1)]


def reachable_modules(root: Path, entry: str) -> list[str]:
    """The snapshot's modules that `python -m <entry>` can import, sorted; parents included.

    Names that resolve to no file under `root` are left to the environment (third-party
    packages); one whose top-level package is in `root` but which has no file is reported as
    itself, so the import test fails on it.
    """
    local_packages = {path.parent.name for path in root.glob("*/__init__.py")}
    seen: set[str] = set()
    pending = _with_parents(entry)
    while pending:
        module = pending.pop()
        if module in seen or module.split(".")[0] not in local_packages:
            continue
        path = module_file(root, module)
        if path is None:
            # `from package import name` where name is an attribute, not a module; a missing
            # module is caught by the parent's own import.
            if module_file(root, module.rsplit(".", 1)[0]) is not None:
                continue
            seen.add(module)
            continue
        seen.add(module)
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        for name in _imported_names(ast.parse(path.read_text(), str(path)), package):
            pending.extend(_with_parents(name))
    return sorted(seen)


# Run in the job's interpreter from the snapshot folder: drop every path outside the snapshot
# that is not the environment's own (an editable install of the repository adds its root),
# then import each module and report what failed or came from elsewhere.
_IMPORT_CHECK = """
import importlib, json, os, sys, traceback
snapshot = os.path.realpath(os.getcwd())
hidden = set(json.loads(sys.argv[1]))
sys.path[:] = [p for p in sys.path if os.path.realpath(p or '.') not in hidden]
if snapshot not in map(os.path.realpath, sys.path):
    sys.path.insert(0, snapshot)
failures = {}
for name in json.loads(sys.argv[2]):
    try:
        module = importlib.import_module(name)
    except BaseException as error:
        failures[name] = traceback.format_exception_only(type(error), error)[-1].strip()
        continue
    where = os.path.realpath(getattr(module, '__file__', '') or '')
    if not where.startswith(snapshot + os.sep):
        failures[name] = 'imported from outside the snapshot: ' + where
print(json.dumps(failures))
"""


def import_failures(
    python: Path, snapshot: Path, modules: list[str], hidden: list[Path]
) -> dict[str, str]:
    """Import `modules` with `python` from `snapshot` alone; returns module → error.

    `hidden` are folders to take off sys.path first (the repository checkout, which an editable
    install puts there): the job on Azure ML has nothing but the snapshot and its environment.
    """
    import json
    import subprocess

    result = subprocess.run(
        [
            str(python.absolute()),  # not resolved: a venv's python is a symlink
            "-c",
            _IMPORT_CHECK,
            json.dumps([str(path.resolve()) for path in hidden]),
            json.dumps(modules),
        ],
        cwd=snapshot,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "PYTHONNOUSERSITE": "1"},
    )
    if result.returncode != 0:
        return {"<interpreter>": (result.stderr.strip().splitlines() or ["no output"])[-1]}
    failures: dict[str, str] = json.loads(result.stdout.strip().splitlines()[-1])
    return failures
