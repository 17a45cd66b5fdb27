"""The house holds its shape: no import circles in the core (imports inside functions count),
at most 12 modules at the top of `hub/`, the core names no built-in plugin or connector, the
rule hooks are asked from one module, and the chosen ruff rules and mypy are clean.

The import graph is read with `ast`, so an import tucked inside a function to dodge a circle is
still an edge; an import of a package's own `__init__` from inside that package is not (Python
loads the package first anyway)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HUB = ROOT / "hub"
RULE_HOOKS = ("commissions_for_payment", "commissions_for_install", "commissions_for_tick")
OTHER_RULE_HOOKS = ("payout_policy", "new_partner_status", "auto_enroll_kind",
                    "partner_kind_profile", "link_requirements", "self_signup_kind")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _core_files() -> dict[str, Path]:
    return {_module_name(p): p for p in HUB.rglob("*.py") if "migrations" not in p.parts}


def _imported(tree: ast.AST, package: str) -> list[str]:
    """Every module name an import statement anywhere in `tree` names (relative ones resolved
    against `package`), with `from a import b` counted as both `a` and `a.b`."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[:len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            out += [base] + [f"{base}.{alias.name}" for alias in node.names]
    return out


def import_graph() -> dict[str, set[str]]:
    modules = _core_files()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for target in _imported(ast.parse(path.read_text()), package):
            while target and target not in modules:
                target = target.rpartition(".")[0]
            own_package = modules.get(target, path).name == "__init__.py" and name.startswith(
                target + ".")
            if target and target != name and not own_package:
                graph[name].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_the_core_has_no_import_circle_counting_imports_inside_functions() -> None:
    assert circles(import_graph()) == []


def test_circles_are_found_through_imports_inside_functions() -> None:
    """The check itself: a circle closed only by an import inside a function is reported."""
    graph = {"hub.a": {"hub.b"}, "hub.b": set(), "hub.c": set()}
    tree = ast.parse("def late():\n    from hub.a import x\n")
    graph["hub.b"] |= {t for t in _imported(tree, "hub") if t in graph}
    assert circles(graph) == [["hub.a", "hub.b"]]


def test_at_most_twelve_modules_stand_at_the_top_of_hub() -> None:
    top = sorted(p.name for p in HUB.glob("*.py") if p.name != "__init__.py")
    assert len(top) <= 12, top


def test_the_core_names_no_built_in_plugin_or_connector() -> None:
    named = []
    for name, path in _core_files().items():
        tree = ast.parse(path.read_text())
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        named += [f"{name} imports {t}" for t in _imported(tree, package)
                  if t.split(".")[0] in ("plugins", "connectors")]
        named += [f"{name}: {node.value!r}" for node in ast.walk(tree)
                  if isinstance(node, ast.Constant) and isinstance(node.value, str)
                  and re.fullmatch(r"(plugins|connectors)\.\w+", node.value)]
    assert named == []


def _askers(hooks: tuple[str, ...]) -> dict[str, set[str]]:
    """Per hook, the core modules that name it (the hookspecs aside)."""
    askers: dict[str, set[str]] = {hook: set() for hook in hooks}
    for name, path in _core_files().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in askers and name != "hub.hookspecs":
                askers[node.value].add(name)
    return askers


def test_the_commission_rules_are_asked_from_the_one_decision_layer() -> None:
    assert _askers(RULE_HOOKS) == {hook: {"hub.ingest.decide"} for hook in RULE_HOOKS}


def test_every_other_rule_hook_is_asked_from_one_module() -> None:
    spread = {hook: names for hook, names in _askers(OTHER_RULE_HOOKS).items() if len(names) != 1}
    assert spread == {}


def _run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *command], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean_with_the_chosen_rules() -> None:
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_is_clean_on_the_core_the_plugins_and_the_connectors() -> None:
    result = _run("mypy", "--cache-dir", str(ROOT / ".mypy_cache"))
    assert result.returncode == 0, result.stdout + result.stderr
