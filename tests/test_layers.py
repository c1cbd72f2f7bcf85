"""The package's layers, read from the imports with ``ast`` (docs/architecture.md, "Layers").

A module may import its own package, the foundation, and packages of lower layers; the stages (layer 1) import
each other only through the declared interfaces. Every package and top-level module must be given a layer here,
so a new one is a decision, not an accident.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "aigcrec"

LAYERS: dict[str, int] = {
    # 0 foundation: schemas, loaders, errors, metrics, logging, the strict config base, shared ONNX/seed helpers,
    # the HTML report builder, the saved-component folder convention (saved)
    "data": 0, "metrics": 0, "logs": 0, "config_base": 0, "onnx_cpu": 0, "seeding": 0, "report": 0, "training": 0,
    "saved": 0,
    # 1 stages: libraries of models and their training, each with its own config section
    "world": 1, "content": 1, "affect": 1, "ranking": 1, "retrieval": 1,
    # 2 the service composes the stages
    "service": 2,
    # 3 above the service: dataset assembly with content features, the top-K benchmark, the online simulation
    # through the HTTP service, the Ray adapters
    "sources": 3, "topk": 3, "simulate": 3, "distributed": 3,
    # 4 top: AppConfig assembled from every section, the command line, the demo, build, Ray Serve builder
    "config": 4, "cli": 4, "demo": 4, "build": 4, "serve_app": 4,
}

INTERFACES: dict[str, set[str]] = {
    # Declared sideways reads between stages (module prefixes): ranking and retrieval read content vectors.
    "ranking": {"aigcrec.content.store"},
    "retrieval": {"aigcrec.content.store"},
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(imported aigcrec module, line, inside a function) for every import of the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int, bool]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda))
            if isinstance(child, ast.Import):
                found.extend([(a.name, child.lineno, in_function) for a in child.names if a.name.startswith("aigcrec.")])
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                if child.module.startswith("aigcrec."):
                    found.append((child.module, child.lineno, in_function))
                elif child.module == "aigcrec":  # from aigcrec import sources
                    found.extend((f"aigcrec.{a.name}", child.lineno, in_function) for a in child.names)
            visit(child, inner)

    visit(tree, False)
    return found


MODULES = _modules()
IMPORTS = {name: _imports(path) for name, path in MODULES.items()}


def test_every_package_has_a_layer():
    unknown = sorted({p for m in MODULES if (p := _package(m)) and p not in LAYERS})
    assert not unknown, f"give these packages/modules a layer in tests/test_layers.py LAYERS: {unknown}"


def test_no_upward_or_sideways_imports():
    bad = []
    for module, imports in IMPORTS.items():
        src = _package(module)
        if src is None or src not in LAYERS:
            continue
        for target, line, _ in imports:
            dst = _package(target)
            if dst is None or dst == src or dst not in LAYERS:
                continue
            upward = LAYERS[dst] > LAYERS[src]
            sideways = LAYERS[dst] == LAYERS[src] == 1 and not any(
                target == p or target.startswith(p + ".") for p in INTERFACES.get(src, ()))
            if upward or sideways:
                kind = "upward" if upward else "sideways (not a declared interface)"
                bad.append(f"{MODULES[module].relative_to(SRC.parent)}:{line}: {kind} import of {target}")
    assert not bad, "layer violations:\n" + "\n".join(bad)


def test_packages_form_no_cycle():
    graph: dict[str, set[str]] = defaultdict(set)
    for module, imports in IMPORTS.items():
        src = _package(module)
        for target, _, _ in imports:
            dst = _package(target)
            if src and dst and dst != src:
                graph[src].add(dst)
    state: dict[str, int] = {}
    path: list[str] = []

    def dfs(node: str) -> None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle between packages: " + " -> ".join(path[path.index(nxt):] + [nxt]))
            if nxt not in state:
                dfs(nxt)
        path.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            dfs(node)


# Imports of aigcrec modules inside functions hide the dependency graph. The few left are lazy on purpose
# (an optional or heavy dependency the importer must not load, or an import time that every command pays), and
# each says why in a comment that starts with "lazy:" on its line or the line above; the count may only go down.
# (Third-party imports inside functions, such as Ray or hub models, are not counted here.)
# The command line is exempt: each command imports its stage when it runs, so `aigcrec --help` stays light.
FUNCTION_LEVEL_CEILING = 3  # 137 when this test was written (2026-12-02); lower it as they go
LAZY_MARK = "# lazy:"


def _function_level() -> list[tuple[str, int, str]]:
    return sorted((m, line, t) for m, imps in IMPORTS.items() if _package(m) != "cli" for t, line, fn in imps if fn)


def test_function_level_internal_imports_do_not_grow():
    inner = [f"{MODULES[m].relative_to(SRC.parent)}:{line} {t}" for m, line, t in _function_level()]
    assert len(inner) <= FUNCTION_LEVEL_CEILING, (
        f"{len(inner)} aigcrec imports inside functions (ceiling {FUNCTION_LEVEL_CEILING}); import at module "
        f"level instead, or lower the ceiling when you remove some:\n" + "\n".join(inner))


def _says_why(lines: list[str], line: int) -> bool:
    """The import at 1-based ``line`` carries ``# lazy: <reason>`` on its line or the line above."""
    for text in (lines[line - 1], lines[line - 2] if line > 1 else ""):
        at = text.find(LAZY_MARK)
        if at >= 0 and text[at + len(LAZY_MARK):].strip():
            return True
    return False


def test_function_level_internal_imports_say_why():
    lines = {m: MODULES[m].read_text(encoding="utf-8").splitlines() for m, _, _ in _function_level()}
    silent = [f"{MODULES[m].relative_to(SRC.parent)}:{line} {t}" for m, line, t in _function_level()
              if not _says_why(lines[m], line)]
    assert not silent, (f"aigcrec imports inside functions without a '{LAZY_MARK} <why>' comment (on the line "
                        f"or the line above); import at module level, or say why it must be lazy:\n"
                        + "\n".join(silent))


def test_lazy_comment_check_reads_the_mark():
    # The check above must see a mark on the import's line or the line above, and only with a reason.
    assert _says_why(["x = 1", "    from aigcrec import data  # lazy: pandas"], 2)
    assert _says_why(["    # lazy: pandas", "    from aigcrec import data"], 2)
    assert not _says_why(["    # lazy:", "    from aigcrec import data"], 2)
    assert not _says_why(["    # lazy: pandas", "", "    from aigcrec import data"], 3)


def test_the_command_line_imports_no_torch():
    # `aigcrec --help` builds every command from cli/ without running one; a command imports its stage when
    # it runs. A module-level import of a stage in cli/ would load torch here.
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC.parent), os.environ.get("PYTHONPATH", "")])}
    code = "import sys, aigcrec.cli.main; print(sorted(m for m in ('torch', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]", f"aigcrec.cli.main loads {out.stdout.strip()}"


def _outside_imports(path: Path) -> list[tuple[str, int]]:
    """(root package, line) of every import of another distribution or the standard library inside a function."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inner = in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef))
            if in_function and isinstance(child, ast.Import):
                found.extend((a.name.split(".")[0], child.lineno) for a in child.names)
            elif in_function and isinstance(child, ast.ImportFrom) and not child.level and child.module:
                found.append((child.module.split(".")[0], child.lineno))
            visit(child, inner)

    visit(tree, False)
    return [(root, line) for root, line in found if root != "aigcrec"]


def test_function_level_outside_imports_are_lazy_on_purpose():
    # Outside the command line, an import inside a function is kept only for an optional or heavy dependency
    # (Ray, hub-model packages, OpenCV, plotting, peer libraries, torch where the command line imports the module),
    # and says so; the standard library is always imported at module level.
    import sys

    bad = []
    for module, path in sorted(MODULES.items()):
        if _package(module) == "cli":
            continue
        lines = path.read_text(encoding="utf-8").splitlines()
        for root, line in _outside_imports(path):
            where = f"{path.relative_to(SRC.parent)}:{line} {root}"
            if root in sys.stdlib_module_names:
                bad.append(f"{where}: the standard library is imported at module level")
            elif not _says_why(lines, line):
                bad.append(f"{where}: no '{LAZY_MARK} <why>' comment")
    assert not bad, "imports inside functions:\n" + "\n".join(bad)
