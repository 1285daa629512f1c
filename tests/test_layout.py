"""The code's layout holds: stages import only earlier stages, the core stays free of the CLI's libraries.

Read from the source with ``ast``, so an import inside a function or under
``TYPE_CHECKING`` counts as much as one at the top.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import cepletter
from cepletter.render import inlinecache, inliner, linewrap, rendercache

PACKAGE = Path(cepletter.__file__).resolve().parent
SHARED = {"__init__", "errors", "config", "fsutil", "workspace", "dates", "frontmatter", "jsonlines", "i18n"}
STAGES = ["sources", "issue", "render", "message", "review", "deliver", "publish", "desk", "cli"]
CLI_ONLY = {"click", "rich"}


def modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        found["cepletter." + ".".join(parts) if parts != ["__init__"] else "cepletter"] = path
    return found


def imports(path: Path) -> list[tuple[str, int]]:
    """Every module ``path`` imports (absolute names), with the line."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, f"{path}:{node.lineno}: relative import"
            base = node.module or ""
            out.append((base, node.lineno))
            # `from cepletter.render import inliner` imports the module cepletter.render.inliner
            out += [(f"{base}.{alias.name}", node.lineno) for alias in node.names if base.startswith("cepletter")]
    return out


def stage(module: str) -> int | None:
    """The stage's place in the pipeline; None for the shared modules (and the package)."""
    parts = module.split(".")
    if len(parts) < 2 or parts[1] in SHARED:
        return None
    if parts[1] == "__main__":
        return len(STAGES)
    return STAGES.index(parts[1])


def test_every_module_is_in_a_stage_or_shared() -> None:
    for module in modules():
        parts = module.split(".")
        assert len(parts) == 1 or parts[1] in SHARED | set(STAGES) | {"__main__"}, module


def test_stages_import_only_earlier_stages_and_shared_modules() -> None:
    known = modules()
    wrong = []
    for module, path in known.items():
        mine = stage(module)
        for name, line in imports(path):
            if name not in known:
                continue
            theirs = stage(name)
            if mine is None and theirs is not None:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: shared module imports {name}")
            elif mine is not None and theirs is not None and theirs > mine:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {STAGES[mine]} imports the later {name}")
    assert wrong == []


def test_core_code_imports_neither_click_nor_rich() -> None:
    wrong = []
    for module, path in modules().items():
        if stage(module) == STAGES.index("cli") or module == "cepletter.__main__":
            continue
        for name, line in imports(path):
            if name.split(".")[0] in CLI_ONLY:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line}: {name}")
    assert wrong == []


def test_no_import_cycle_between_modules() -> None:
    known = modules()
    graph = {m: {n for n, _ in imports(p) if n in known and n != m} for m, p in known.items()}
    # A package's __init__ is imported with any of its modules: not an edge of its own.
    for m in graph:
        graph[m] = {n for n in graph[m] if not m.startswith(n + ".")}
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                pytest.fail("import cycle: " + " → ".join([*trail[trail.index(nxt):], nxt]))
            if nxt not in state:
                visit(nxt, [*trail, nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])


def test_the_inline_cache_key_covers_the_inliner_and_the_line_layout() -> None:
    files = inlinecache.code_files()
    assert files == [Path(inliner.__file__), Path(linewrap.__file__)]
    assert all(path.is_file() for path in files)


def test_the_render_cache_key_covers_every_stage_folder() -> None:
    files = rendercache.code_files()
    folders = {path.relative_to(PACKAGE).parts[0] for path in files}
    assert {stage for stage in STAGES if (PACKAGE / stage).is_dir()} <= folders
    assert Path(inliner.__file__).resolve() in files
