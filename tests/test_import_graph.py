"""npusim's modules import one way: no module imports one that imports it back.

The graph is read from the source with ast, every ``import`` and ``from … import``
counted wherever it stands: at module level, inside functions (lazy imports) and under
``if TYPE_CHECKING:``. An import names the deepest npusim module it reaches
(``from npusim.workloads.ir import BITS`` → ``npusim.workloads.ir``; ``from npusim import
workloads`` → the package ``npusim.workloads``, whose ``__init__`` imports are its edges).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "npusim"


def _modules() -> dict[str, Path]:
    out = {}
    for p in PKG.rglob("*.py"):
        parts = p.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = p
    return out


def _resolve(name: str, mods: dict[str, Path]) -> str | None:
    while name and name not in mods:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    """Module → the npusim modules it imports (itself left out)."""
    mods = _modules()
    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                    src = ".".join(base + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                # ``from pkg import sub`` imports the submodule; ``from mod import name`` the module
                targets = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src
                           for a in node.names]
            for t in targets:
                if t == "npusim" or t.startswith("npusim."):
                    r = _resolve(t, mods)
                    if r is not None and r != mod:
                        graph[mod].add(r)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on.add(root)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(graph[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def _loop(graph: dict[str, set[str]], comp: list[str]) -> list[str]:
    """One closed path through ``comp`` (shortest back to its first module)."""
    start, members = comp[0], set(comp)
    prev: dict[str, str] = {}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while path[-1] != start:
                        path.append(prev[path[-1]])
                    return [start, *reversed(path[:-1]), start]
                if w not in prev:
                    prev[w] = v
                    nxt.append(w)
        frontier = nxt
    return comp


def test_the_graph_sees_the_imports_it_must():
    g = import_graph()
    assert "npusim.simulate" in g and "npusim.result" in g
    assert "npusim.result" in g["npusim.assemble"]  # module level
    assert "npusim.compiler.program" in g["npusim.result"]  # under TYPE_CHECKING
    assert "npusim.system.llm" in g["npusim.llm"]  # inside a function
    assert "npusim.workloads" in g["npusim.inputs"]  # ``from npusim import workloads``


def test_the_cycle_finder_finds_a_loop():
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(g) == [["a", "b", "c"]]
    assert _loop(g, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_no_module_imports_one_that_imports_it_back():
    g = import_graph()
    found = cycles(g)
    assert not found, "import cycles:\n" + "\n".join(
        f"  {len(c)} modules: " + " -> ".join(_loop(g, c)) for c in found)
