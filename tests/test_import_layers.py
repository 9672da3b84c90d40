"""Imports only point down (issue 15). ``lint-imports`` checks the layer contracts in
pyproject.toml (scripts/test runs it too); this test also refuses the other way round a
cycle can hide: an import inside a function whose module, imported at the top, would import
the importer back."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "wire", "device", "webui", "relay")


def _module_name(path: Path) -> str:
    name = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    return name.removesuffix(".__init__")


def _imports_inside_functions(path: Path) -> list[tuple[int, str]]:
    found = []
    for function in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(function, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(function):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [(node.lineno, node.module)]
            elif isinstance(node, ast.Import):
                found += [(node.lineno, alias.name) for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def test_the_layer_contracts_hold():
    done = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-4000:]


def test_no_import_inside_a_function_hides_a_cycle():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    hidden = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            module = _module_name(path)
            for line, target in _imports_inside_functions(path):
                if target not in graph.modules or target == module:
                    continue
                related = target.startswith(module + ".") or module.startswith(target + ".")
                if related or graph.chain_exists(importer=target, imported=module):
                    hidden.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    assert hidden == []
