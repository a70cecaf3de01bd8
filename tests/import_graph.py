"""The house read from the code: which module imports which (also inside functions), and the
picture of its floors in docs/architecture.md.

A node is a file of the checkout (`nnvis_addon/scene/build.py`); an arrow is an import of another
file of the checkout. `from pkg import x` points at the module x when there is one, else at the
package's __init__.py; the package __init__.py that Python runs on the way is not counted (it
would make every module import everything). A room is a package of nnvis_addon (io, model, scene,
…), one of its top-level modules, `operators`, `panels`, or the extension's own __init__.py.

    python tests/import_graph.py      # prints the picture for docs/architecture.md
"""
from __future__ import annotations

import ast
import posixpath
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("nnvis_addon", "operators", "panels")


def module_files(path: str, root: Path = ROOT) -> list[str]:
    """The checkout's files for module path 'a/b' (a/b.py or a/b/__init__.py)."""
    return [f for f in (f"{path}.py", posixpath.join(path, "__init__.py"))
            if (root / f).is_file()]


def imports(file: str, root: Path = ROOT) -> set[str]:
    """The checkout's files that `file` imports, at the top or inside functions."""
    found = set()
    for node in ast.walk(ast.parse((root / file).read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                PACKAGES)):
            base = posixpath.dirname(file)
            for _ in range(node.level - 1):
                base = posixpath.dirname(base)
            target = posixpath.join(base if node.level else "", *(node.module or "").split("."))
            for alias in node.names:
                submodule = module_files(posixpath.join(target, alias.name), root)
                found.update(submodule or module_files(target, root))
        elif isinstance(node, ast.Import):
            found.update(f for a in node.names for f in module_files(a.name.replace(".", "/"),
                                                                       root))
    found.discard(file)
    return found


def graph(root: Path = ROOT) -> dict[str, set[str]]:
    """file -> the files it imports, for the extension's __init__.py and every package file."""
    files = ["__init__.py"] + sorted(p.relative_to(root).as_posix() for package in PACKAGES
                                     for p in (root / package).rglob("*.py"))
    return {f: imports(f, root) for f in files}


def reached(arrows: dict[str, set[str]], start: str, packages: bool = False) -> set[str]:
    """Every file `start` imports, directly or through others (itself included); with `packages`
    also the package __init__.py files Python runs on the way (what an import loads)."""
    seen, todo = set(), [start]
    while todo:
        file = todo.pop()
        if file not in seen:
            seen.add(file)
            todo += arrows.get(file, ())
            package = posixpath.dirname(file.removesuffix("__init__.py").rstrip("/"))
            if packages and package:
                todo += module_files(package)
    return seen


def circles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one node (Tarjan): each holds a circle."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(arrows.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(arrows):
        if v not in index:
            visit(v)
    return groups


def room(file: str) -> str:
    parts = file.removesuffix(".py").split("/")
    if parts == ["__init__"]:
        return "extension"
    if parts[0] != "nnvis_addon":
        return parts[0]
    return "nnvis_addon" if parts == ["nnvis_addon", "__init__"] else parts[1]


def rooms(arrows: dict[str, set[str]]) -> dict[str, set[str]]:
    """room -> the other rooms its files import."""
    out: dict[str, set[str]] = {}
    for file, targets in arrows.items():
        out.setdefault(room(file), set()).update(room(t) for t in targets)
    for name, targets in out.items():
        targets.discard(name)
    return out


def floors(arrows: dict[str, set[str]]) -> dict[str, int]:
    """node -> its floor: 0 imports nothing, else one above the highest floor it imports."""
    floor: dict[str, int] = {}

    def height(v, path=()):
        if v not in floor:
            if v in path:
                raise ValueError(f"circle through {v}")
            floor[v] = 1 + max((height(w, path + (v,)) for w in arrows.get(v, ())), default=-1)
        return floor[v]

    for v in arrows:
        height(v)
    return floor


def picture(root: Path = ROOT) -> str:
    """The floors of the house, top floor first, each room with the lower rooms it imports."""
    arrows = graph(root)
    house = rooms(arrows)
    floor = floors(house)
    width = max(map(len, house))
    lines = [f"{len(house)} rooms on {max(floor.values()) + 1} floors, "
             f"{sum(map(len, house.values()))} arrows between rooms "
             f"({sum(map(len, arrows.values()))} between {len(arrows)} modules), no circle"]
    for level in range(max(floor.values()), -1, -1):
        lines.append(f"floor {level}")
        for name in sorted(r for r in house if floor[r] == level):
            below = ", ".join(sorted(house[name], key=lambda r: (-floor[r], r)))
            lines += textwrap.wrap(below, 98, initial_indent=f"  {name:<{width}}  ▶ ",
                                   subsequent_indent=" " * (width + 6)) or [f"  {name}"]
    return "\n".join(lines)


if __name__ == "__main__":
    print(picture())
