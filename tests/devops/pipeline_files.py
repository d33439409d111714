"""Read the Azure Pipelines YAML the way the checks need it: files, steps, commands, variables."""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
PIPELINES_DIR = ROOT / ".azure-pipelines"
TEMPLATES_DIR = PIPELINES_DIR / "templates"

MACRO = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_.\-]*)\)")
TEMPLATE_EXPRESSION = re.compile(r"\$\{\{.*?\}\}")
WHOLE_SCRIPT = re.compile(r"\$\{\{\s*parameters\.script\s*\}\}")
SET_VARIABLE = re.compile(r"##vso\[task\.setvariable variable=([A-Za-z0-9_.\-]+)")
PREDEFINED_PREFIXES = (
    "Build.",
    "Agent.",
    "System.",
    "Pipeline.",
    "Environment.",
    "Resources.",
    "Date:",
    "Rev:",
)


def pipeline_files() -> list[Path]:
    """The pipelines (names ending in azure-pipelines.yml)."""
    return sorted(PIPELINES_DIR.glob("*azure-pipelines.yml"))


def template_files() -> list[Path]:
    return sorted(TEMPLATES_DIR.glob("*.yml"))


def all_files() -> list[Path]:
    return pipeline_files() + template_files()


def load(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def walk(node: Any) -> Iterator[Any]:
    """Every mapping in a YAML tree, depth first."""
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from walk(item)


def strings(node: Any) -> Iterator[str]:
    """Every string value (and key) in a YAML tree."""
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from strings(item)


def template_references(path: Path, tree: Any) -> list[tuple[str, Path]]:
    """(reference, resolved path) of every `template:` in a file, relative to that file."""
    found = []
    for mapping in walk(tree):
        ref = mapping.get("template")
        if isinstance(ref, str):
            found.append((ref, (path.parent / ref).resolve()))
    return found


def scripts(tree: Any) -> list[str]:
    """Shell text of every step: `script`/`bash`, AzureCLI `inlineScript`, and the `script`
    parameter of a template call."""
    found = []
    for mapping in walk(tree):
        for key in ("script", "bash", "inlineScript"):
            value = mapping.get(key)
            if isinstance(value, str) and not TEMPLATE_EXPRESSION.fullmatch(value.strip()):
                found.append(value)
    return found


SCRIPT_KEYS = ("script", "bash", "inlineScript")


def script_bodies(tree: Any) -> list[str]:
    """Every script body of a file: `script`/`bash` steps, AzureCLI `inlineScript`, and the
    `script` parameter of a template call, including the whole-expression ones."""
    return [
        value
        for mapping in walk(tree)
        for key in SCRIPT_KEYS
        if isinstance(value := mapping.get(key), str)
    ]


def pasted_expressions(tree: Any) -> list[str]:
    """Template expressions pasted into script text, where their value would become code.

    One form is allowed: in a template that declares a `script` parameter, a body that is
    nothing but `${{ parameters.script }}`, the way such a template runs the whole script it
    takes (azure-cli.yml): the caller's script is checked where it is written."""
    declared = (
        {p.get("name") for p in (tree.get("parameters") or []) if isinstance(p, dict)}
        if isinstance(tree, dict)
        else set()
    )
    found = []
    for body in script_bodies(tree):
        if "script" in declared and WHOLE_SCRIPT.fullmatch(body.strip()):
            continue
        found += TEMPLATE_EXPRESSION.findall(body)
    return found


def template_calls(tree: Any, template: str) -> list[dict[str, Any]]:
    """The `parameters` of every call of a template (by file name) in a file."""
    return [
        dict(mapping.get("parameters") or {})
        for mapping in walk(tree)
        if isinstance(mapping.get("template"), str) and Path(mapping["template"]).name == template
    ]


def template_defaults(path: Path) -> dict[str, Any]:
    """A template's parameter defaults."""
    return {p["name"]: p.get("default") for p in load(path).get("parameters") or ()}


def is_true(value: Any) -> bool:
    """A YAML boolean as Azure Pipelines reads it (the schema wants booleans as strings)."""
    return value is True or str(value).lower() == "true"


@dataclass(frozen=True)
class Invocation:
    file: str
    line: str
    argv: list[str]


def command_lines(text: str, program: str) -> list[str]:
    return [
        line.strip() for line in text.splitlines() if line.strip().startswith(f"{program} ")
    ] + [line.strip() for line in text.splitlines() if line.strip() == program]


def invocations(program: str = "mlops", files: list[Path] | None = None) -> list[Invocation]:
    """Every `<program> …` command line in the pipelines, split like the shell would."""
    found = []
    for path in files or all_files():
        for script in scripts(load(path)):
            for line in command_lines(script, program):
                shell_part = line.split(" > ", 1)[0]
                argv = shlex.split(shell_part)[1:]
                found.append(Invocation(path.name, line, argv))
    return found


def macros(tree: Any) -> set[str]:
    """Every `$(name)` macro used in a file."""
    return {match for text in strings(tree) for match in MACRO.findall(text)}


def defined_variables(tree: Any) -> set[str]:
    """Variables a file defines: `variables:` entries (list or mapping form), `setvariable`
    logging commands (also as `<step name>.<variable>` for output variables)."""
    names: set[str] = set()
    for mapping in walk(tree):
        block = mapping.get("variables")
        if isinstance(block, dict):
            names.update(block)
        elif isinstance(block, list):
            names.update(v["name"] for v in block if isinstance(v, dict) and "name" in v)
        for key in ("script", "bash"):
            text = mapping.get(key)
            if isinstance(text, str):
                for variable in SET_VARIABLE.findall(text):
                    names.add(variable)
                    if isinstance(mapping.get("name"), str):
                        names.add(f"{mapping['name']}.{variable}")
    return names


def variable_groups(tree: Any) -> set[str]:
    found = set()
    for mapping in walk(tree):
        block = mapping.get("variables")
        if isinstance(block, list):
            found.update(v["group"] for v in block if isinstance(v, dict) and "group" in v)
    return found


def is_predefined(name: str) -> bool:
    return name.startswith(PREDEFINED_PREFIXES)


def undefined_macros(files: list[Path], extra: set[str]) -> dict[str, set[str]]:
    """Macros per file that no file, variable group or predefined variable defines."""
    trees = {path: load(path) for path in files}
    defined = set(extra)
    for tree in trees.values():
        defined |= defined_variables(tree)
    missing = {}
    for path, tree in trees.items():
        unknown = {m for m in macros(tree) if m not in defined and not is_predefined(m)}
        if unknown:
            missing[path.name] = unknown
    return missing


def jobs(tree: Any) -> list[dict[str, Any]]:
    """Every job and deployment job."""
    return [m for m in walk(tree) if "job" in m or "deployment" in m]


def environments(tree: Any) -> set[str]:
    return {m["environment"] for m in walk(tree) if isinstance(m.get("environment"), str)}
