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
