"""The documentation stays whole: every hook has its heading, the site builds with --strict,
every page is in the nav, and the README stays a front door.

Hook names are read from `hub/hookspecs.py` with `ast`, not imported, so these tests do not
depend on where the modules around it live."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
MKDOCS_YML = ROOT / "mkdocs.yml"
README_MAX_LINES = 300


def _is_hookspec(decorator: ast.expr) -> bool:
    target = decorator.func if isinstance(decorator, ast.Call) else decorator
    if isinstance(target, ast.Name):
        return target.id == "hookspec"
    return isinstance(target, ast.Attribute) and target.attr == "hookspec"


def hookspec_names() -> list[str]:
    tree = ast.parse((ROOT / "hub" / "hookspecs.py").read_text(encoding="utf-8"))
    return [node.name for node in tree.body
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and any(_is_hookspec(d) for d in node.decorator_list)]


def level_two_headings(markdown: str) -> set[str]:
    headings, fenced = set(), False
    for line in markdown.splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        match = re.match(r"^##\s+(.+?)\s*#*\s*$", line)
        if match and not fenced:
            headings.add(match.group(1).replace("`", "").strip())
    return headings


def nav_pages() -> list[str]:
    """The .md files the nav of mkdocs.yml names (read as text: no YAML parser needed)."""
    text = MKDOCS_YML.read_text(encoding="utf-8")
    nav = re.search(r"^nav:\s*\n((?:[ \t]+.*\n?|\s*\n)*)", text, re.MULTILINE)
    assert nav, "mkdocs.yml has no nav"
    return re.findall(r"([\w./-]+\.md)\s*$", nav.group(1), re.MULTILINE)


def test_hookspecs_are_found() -> None:
    names = hookspec_names()
    assert "register_programs" in names and "commissions_for_payment" in names, names


def test_every_hook_has_a_heading_in_hooks_md() -> None:
    headings = level_two_headings((DOCS / "hooks.md").read_text(encoding="utf-8"))
    missing = [name for name in hookspec_names() if name not in headings]
    assert not missing, (
        f"hooks without a '## <name>' heading in docs/hooks.md: {', '.join(missing)}")


def test_readme_is_a_front_door() -> None:
    lines = (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    assert len(lines) <= README_MAX_LINES, (
        f"README.md has {len(lines)} lines; at most {README_MAX_LINES} "
        "(the reference belongs in docs/)")


def test_nav_and_docs_agree() -> None:
    named = nav_pages()
    missing = [page for page in named if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml nav names pages that do not exist: {missing}"
    on_disk = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
    left_out = [page for page in on_disk if page not in named]
    assert not left_out, f"pages under docs/ missing from the mkdocs.yml nav: {left_out}"


def test_mkdocs_builds_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS_YML),
         "--site-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, (
        f"mkdocs build --strict failed:\n{result.stderr}\n{result.stdout}")
