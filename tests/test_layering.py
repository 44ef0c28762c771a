"""The layering rules of the monorepo, checked on the import statements of every module."""

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("runtime", "speculative", "sopr_rag", "sparse_align")
ALLOWED = {
    "runtime": set(),
    "speculative": {"runtime"},
    "sopr_rag": {"runtime"},
    "sparse_align": {"runtime"},
    "experiments": {"runtime", "speculative", "sopr_rag", "sparse_align"},
}


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def python_files(pkg: str) -> list[Path]:
    return sorted(p for p in (REPO / pkg).rglob("*.py") if ".venv" not in p.parts)


@pytest.mark.parametrize("pkg", sorted(ALLOWED))
def test_package_imports_respect_layering(pkg):
    forbidden = (set(PACKAGES) | {"experiments"}) - ALLOWED[pkg] - {pkg}
    bad = [f"{p.relative_to(REPO)} imports {sorted(imported_roots(p) & forbidden)}"
           for p in python_files(pkg) if imported_roots(p) & forbidden]
    assert not bad, "\n".join(bad)


def test_nothing_imports_experiments():
    bad = [str(p.relative_to(REPO)) for pkg in PACKAGES for p in python_files(pkg) if "experiments" in imported_roots(p)]
    assert not bad


def test_compiled_ops_only_through_runtime_ops():
    """csrc kernels (runtime._C*) are imported only inside runtime/ops/."""
    bad = []
    for pkg in (*PACKAGES, "experiments"):
        for p in python_files(pkg):
            if "ops" in p.relative_to(REPO).parts[:2]:
                continue
            src = p.read_text(encoding="utf-8")
            if "runtime._C" in src or "runtime import _C" in src or "torch.ops.llmsys" in src:
                bad.append(str(p.relative_to(REPO)))
    assert not bad, bad


def test_layering_checker_detects_violations(tmp_path):
    f = tmp_path / "m.py"
    f.write_text("import sopr_rag.cards\nfrom speculative.model import x\nfrom . import y\n")
    assert imported_roots(f) == {"sopr_rag", "speculative"}


# ----------------------------------------------------------------------------- outputs and cycles
def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def experiments_paths(path: Path) -> list[str]:
    """String constants in code (docstrings and comments aside) that name experiments/ as a path."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    docs = _docstring_nodes(tree)
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            if "experiments/" in node.value or node.value == "experiments":
                bad.append(f"{path.relative_to(REPO)}:{node.lineno}: {node.value[:60]!r}")
    return bad


def test_package_code_never_names_experiments_by_path():
    """Packages take output and config paths from the caller (config / command line / results_dir());
    an installed package must not write into, or read from, the source tree's experiments/."""
    bad = [hit for pkg in PACKAGES for p in python_files(pkg) for hit in experiments_paths(p)]
    assert not bad, "\n".join(bad)


def test_experiments_path_check_detects_literals(tmp_path):
    f = REPO / "tests" / "_tmp_layering_probe.py"
    f.write_text('"""Writes experiments/results/x.json."""\nOUT = "experiments/results/x.json"\n'
                 'P = root / "experiments" / "configs"\n')
    try:
        hits = experiments_paths(f)
    finally:
        f.unlink()
    assert len(hits) == 2 and ":2:" in hits[0] and ":3:" in hits[1]


def import_graph(packages=PACKAGES) -> dict[str, set[str]]:
    """{module: project modules it imports}, function-level imports included (a cycle they hide is still
    a cycle), `from pkg import name` resolved to the submodule pkg.name when that is a module."""
    mods: dict[str, Path] = {}
    for pkg in packages:
        for p in python_files(pkg):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p

    def resolve(name: str) -> str | None:
        while name and name not in mods:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for mod, path in mods.items():
        is_pkg = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = mod.split(".") if is_pkg else mod.split(".")[:-1]
                prefix = base[:len(base) - node.level + 1] if node.level else []
                src = ".".join(prefix + ([node.module] if node.module else []))
                names = [f"{src}.{a.name}" if f"{src}.{a.name}" in mods else src for a in node.names]
            else:
                continue
            graph[mod] |= {r for r in map(resolve, names) if r and r != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    import networkx as nx

    g = nx.DiGraph([(a, b) for a, targets in graph.items() for b in targets])
    return sorted(sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1)


def test_no_import_cycles_among_project_modules():
    found = cycles(import_graph())
    assert not found, "import cycles (move the shared piece down):\n" + "\n".join(map(str, found))


def test_cycle_check_detects_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_config_class_names_are_distinct():
    """One name per concept: two packages' configs never share a class name (`EvalConfig` meant three things)."""
    seen: dict[str, list[str]] = {}
    for pkg in PACKAGES:
        for p in python_files(pkg):
            for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and node.name.endswith("Config"):
                    seen.setdefault(node.name, []).append(str(p.relative_to(REPO)))
    clashes = {name: where for name, where in seen.items() if len(where) > 1}
    assert not clashes, clashes
