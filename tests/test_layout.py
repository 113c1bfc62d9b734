"""The wings' import rules (README, "Layout"), read from the code's own imports.

Every import counts: at module level, inside functions (lazy imports) and under
``TYPE_CHECKING``. Each wing may import only what ``MAY_IMPORT`` lists, there is no import
circle anywhere, and the pure wings import without Celery, kombu or Redis installed.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("cato_mq", "workers", "beat")
#: The public face's modules that import no runtime (Celery, Redis): any wing may use them.
PURE_FACE = {"cato_mq", "cato_mq.graphs", "cato_mq.schemas", "cato_mq.settings", "cato_mq.prompts", "cato_mq.errors"}
#: The rest of the public face: the Celery app, the client and the router.
FACE = PURE_FACE | {"cato_mq.app", "cato_mq.client", "cato_mq.router"}
#: Every project module: the wings at the top of the graph may import anything.
ANY = ("cato_mq", "cato_mq.", "workers", "workers.", "beat", "beat.")
#: wing -> what its modules may import besides their own wing: module names, or prefixes ending in "."
MAY_IMPORT: dict[str, tuple[str, ...]] = {
    "face": (*FACE, "cato_mq.policy.", "cato_mq.state."),
    "cato_mq.policy": (*PURE_FACE,),
    "cato_mq.state": (*PURE_FACE, "cato_mq.policy.", "cato_mq.engine.profile", "cato_mq.engine.timing"),
    "cato_mq.engine": (*FACE, "cato_mq.policy.", "cato_mq.state.", "cato_mq.fleet."),
    "cato_mq.fleet": (*FACE, "cato_mq.policy.", "cato_mq.state."),
    "cato_mq.sim": (*PURE_FACE, "cato_mq.policy.", "cato_mq.engine.timing",
                    "cato_mq.bench.workload", "cato_mq.bench.corpus", "cato_mq.bench.scoring"),
    "cato_mq.gateway": (*FACE, "cato_mq.policy.", "cato_mq.state.", "cato_mq.fleet.", "cato_mq.engine.text_only",
                        "cato_mq.engine.timing", "cato_mq.metrics."),
    "cato_mq.bench": ANY,
    "cato_mq.cli": ANY,
    "workers": (*FACE, "cato_mq.policy.", "cato_mq.state.", "cato_mq.engine.", "cato_mq.fleet."),
    "beat": (*FACE, "cato_mq.policy.", "cato_mq.state.", "cato_mq.fleet."),
    "cato_mq.metrics": (*PURE_FACE, "cato_mq.policy.", "cato_mq.state."),
}
#: Modules of the engine wing the simulator depends on: held to the pure wings' rule.
PURE_ENGINE = ("cato_mq.engine.timing", "cato_mq.engine.profile", "cato_mq.engine.usl")


def modules() -> dict[str, Path]:
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = modules()


def imports(name: str, path: Path) -> set[str]:
    """The project modules ``name`` imports, anywhere in its code."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against this module's package
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:
                # `from pkg import mod` imports the module pkg.mod; `from mod import name`, mod
                found.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in MODULES else base)
    return {m for m in found if m in MODULES}


GRAPH = {name: imports(name, path) for name, path in MODULES.items()}


def wing(name: str) -> str:
    for prefix in MAY_IMPORT:
        if prefix != "face" and (name == prefix or name.startswith(prefix + ".")):
            return prefix
    return "face"


def allowed(importer: str, imported: str) -> bool:
    own = wing(importer)
    if wing(imported) == own:
        return True
    if importer in PURE_ENGINE:
        return imported in PURE_FACE or imported.startswith("cato_mq.policy.")
    return any(imported == rule or (rule.endswith(".") and imported.startswith(rule)) for rule in MAY_IMPORT[own])


def test_every_import_is_one_its_wing_may_make() -> None:
    wrong = sorted(f"{a} imports {b}" for a, deps in GRAPH.items() for b in deps if not allowed(a, b))
    assert not wrong, "\n".join(wrong)


def test_the_rules_catch_a_forbidden_import() -> None:
    # the checker itself: these are the rules, so each must be able to fail
    assert not allowed("cato_mq.policy.tiers", "cato_mq.state.keys")
    assert not allowed("cato_mq.router", "workers.tasks")
    assert not allowed("workers.tasks", "beat.tick")
    assert not allowed("cato_mq.sim.simulator", "cato_mq.bench.runtime")
    assert allowed("cato_mq.bench.runtime", "workers.sim_engine")
    assert allowed("cato_mq.cli.fleet", "beat.tick")


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Every strongly connected component of more than one module (Tarjan), or a self-import."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in graph[v]:
                out.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_circles_type_only_ones_included() -> None:
    assert cycles(GRAPH) == []


def test_the_circle_finder_finds_a_circle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def _pure_modules() -> list[str]:
    return sorted(m for m in MODULES if m.startswith(("cato_mq.policy", "cato_mq.sim")) or m in PURE_ENGINE)


@pytest.mark.parametrize("blocked", [("celery", "kombu", "redis")])
def test_policy_and_sim_import_without_celery_kombu_or_redis(blocked: tuple[str, ...]) -> None:
    names = _pure_modules()
    assert "cato_mq.policy.tiers" in names and "cato_mq.sim.simulator" in names
    script = "\n".join([
        "import importlib, sys",
        # a None entry makes `import celery` (and every submodule) raise ImportError
        *(f"sys.modules[{b!r}] = None" for b in blocked),
        f"for name in {names!r}:",
        "    importlib.import_module(name)",
        f"loaded = sorted(m for m in sys.modules if m.split('.')[0] in {blocked!r} and sys.modules[m] is not None)",
        "assert not loaded, loaded",
        "print('ok', len(" + repr(names) + "))",
    ])
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("ok")


def test_the_blocking_bites() -> None:
    # the same harness on a module that needs Redis must fail, or the test above proves nothing
    script = "import sys\nsys.modules['redis'] = None\nimport cato_mq.state.ledger\n"
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "import of redis halted" in done.stderr
