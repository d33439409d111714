"""The import architecture: no cycles, and the layers of pyproject.toml's [tool.importlinter].

Every import counts, also those inside functions (lazy imports) and under TYPE_CHECKING: a
cycle hidden in a function is still a cycle a reader has to untangle. Each check is also fed a
graph with one bad import added, to prove it fails on what it is meant to catch.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

import grimp
import pytest
from importlinter import configuration
from importlinter.contracts.acyclic_siblings import AcyclicSiblingsContract
from importlinter.contracts.forbidden import ForbiddenContract
from importlinter.contracts.layers import LayersContract
from importlinter.domain.contract import Contract

configuration.configure()  # import-linter's settings (what `lint-imports` sets up first)
ROOT = Path(__file__).resolve().parents[1]
CONFIG: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"][
    "importlinter"
]
CONTRACT_TYPES: dict[str, type[Contract]] = {
    "layers": LayersContract,
    "forbidden": ForbiddenContract,
    "acyclic_siblings": AcyclicSiblingsContract,
}


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph(
        *CONFIG["root_packages"],
        include_external_packages=CONFIG["include_external_packages"],
        cache_dir=None,  # always the code as it is now
    )


def module_cycles(graph: grimp.ImportGraph) -> list[tuple[str, ...]]:
    """One chain per direct import that is part of a cycle: importer → … → importer."""
    cycles = []
    for importer in sorted(graph.modules):
        for imported in sorted(graph.find_modules_directly_imported_by(importer)):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back is not None:
                cycles.append((importer, *back))
    return cycles


def test_no_module_imports_itself_back(graph: grimp.ImportGraph) -> None:
    cycles = module_cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(" → ".join(chain) for chain in cycles)


def test_a_cycle_is_found(graph: grimp.ImportGraph) -> None:
    broken = copy.deepcopy(graph)
    broken.add_import(importer="pipelines.gate", imported="pipelines.cli")  # cli → … → gate
    found = [
        chain for chain in module_cycles(broken) if chain[:2] == ("pipelines.gate", "pipelines.cli")
    ]
    assert found
    assert found[0][-1] == "pipelines.gate"


def contract(contract_id: str) -> Contract:
    options = next(item for item in CONFIG["contracts"] if item["id"] == contract_id)
    session = {key: value for key, value in CONFIG.items() if key != "contracts"}
    return CONTRACT_TYPES[options["type"]](
        name=options["name"], session_options=session, contract_options=options
    )


@pytest.mark.parametrize("contract_id", [item["id"] for item in CONFIG["contracts"]])
def test_contract_is_kept(graph: grimp.ImportGraph, contract_id: str) -> None:
    check = contract(contract_id).check(copy.deepcopy(graph), verbose=False)
    assert check.kept, f"{contract_id}: {check.metadata}"


# One import per contract that the architecture forbids: the check must notice each.
BAD_IMPORTS = {
    "layers": ("pipelines.lifecycle", "pipelines.commands.training"),  # the old demo ↔ CLI knot
    "no-cli-below-commands": ("pipelines.steps", "typer"),
    "pure-decisions": ("pipelines.release.plan", "mlflow"),
    "target-neutral-lifecycle": ("pipelines.lifecycle", "pipelines.targets.local"),
    "acyclic": ("pipelines.registry", "pipelines.targets.local"),
    "program-without-tooling": ("infra.components.workspace", "infra.tooling.recording"),
}


def test_every_contract_has_a_bad_import() -> None:
    assert set(BAD_IMPORTS) == {item["id"] for item in CONFIG["contracts"]}


@pytest.mark.parametrize("contract_id", sorted(BAD_IMPORTS))
def test_contract_breaks_on_a_bad_import(graph: grimp.ImportGraph, contract_id: str) -> None:
    broken = copy.deepcopy(graph)
    importer, imported = BAD_IMPORTS[contract_id]
    broken.add_import(importer=importer, imported=imported)
    assert not contract(contract_id).check(broken, verbose=False).kept
