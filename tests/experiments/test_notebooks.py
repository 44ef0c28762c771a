"""The reproduction notebooks execute with nbclient: on synthetic results (fast, exact) and with their tiny
live step on the real SmolLM2 / SOP fixtures (slow on a loaded CPU)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from runtime.paths import repo_root

RUNNER = repo_root() / "experiments" / "run_notebooks.py"
FIXTURES = Path(__file__).parent / "fixtures" / "results"
NOTEBOOKS = ("speculative", "sopr_rag", "sparse_align")
# what each notebook must show from the synthetic results: its claim table and its figures
EXPECT = {"speculative": ("| SpecBundle Llama-3.1-8B draft", "3.71", 2),
          "sopr_rag": ("| SOPRAG beats lexical", "+0.120", 4),
          "sparse_align": ("| At 20-40% steering", "(small scale)", 1)}


def outputs(nb) -> tuple[str, int, list]:
    text, images, errors = [], 0, []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            errors += [out] if out.output_type == "error" else []
            images += "image/png" in out.get("data", {})
            text.append(out.get("text", "") + out.get("data", {}).get("text/markdown", ""))
    return "\n".join(text), images, errors


def execute(tmp_path: Path, live: str, names: tuple[str, ...]) -> dict[str, nbformat.NotebookNode]:
    results = tmp_path / "results"
    shutil.copytree(FIXTURES, results)
    proc = subprocess.run([sys.executable, str(RUNNER), *names, "--live", live, "--results", str(results),
                           "--out-dir", str(tmp_path / "out")], capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert sorted(p.name for p in results.iterdir()) == sorted(p.name for p in FIXTURES.iterdir())  # read-only
    return {n: nbformat.read(tmp_path / "out" / f"{n}.ipynb", as_version=4) for n in names}


def test_committed_notebooks_match_their_source(tmp_path: Path):
    """experiments/notebooks/*.ipynb carry the cells build_notebooks.py defines (outputs aside)."""
    sys.path.insert(0, str(repo_root() / "experiments" / "notebooks"))
    try:
        import build_notebooks
    finally:
        sys.path.pop(0)
    for name, nb in (("speculative", build_notebooks.SPECULATIVE), ("sopr_rag", build_notebooks.SOPR_RAG),
                     ("sparse_align", build_notebooks.SPARSE_ALIGN)):
        committed = nbformat.read(repo_root() / "experiments" / "notebooks" / f"{name}.ipynb", as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in nb.cells], name


def test_notebooks_show_claims_tables_and_figures(tmp_path: Path):
    for name, nb in execute(tmp_path, "off", NOTEBOOKS).items():
        text, images, errors = outputs(nb)
        claim_row, number, n_images = EXPECT[name]
        assert not errors, name
        assert claim_row in text and number in text, name
        assert images == n_images, (name, images)


@pytest.mark.slow
def test_notebooks_tiny_live_step(tmp_path: Path):
    nbs = execute(tmp_path, "tiny", NOTEBOOKS)
    spec, _, _ = outputs(nbs["speculative"])
    assert "cost ratio" in spec
    rag, _, _ = outputs(nbs["sopr_rag"])
    assert "| SOPRAG top-1 | hit@1 |" in rag and "datacenter/" in rag
    sia, _, _ = outputs(nbs["sparse_align"])
    assert "| SmolLM2 sample | teacher reward |" in sia
