"""Helpers the reproduction notebooks share: where results live, claim tables, figures, the live step.

Notebooks read only result JSONs (like the figure scripts and the report) and reach the packages through
their CLIs, so they keep working while the packages' internals move.

Environment (set by experiments/run_notebooks.py):
  EXPERIMENTS_RESULTS_DIR  result JSONs to show (default experiments/results)
  NOTEBOOK_LIVE            tiny (seconds-scale live step, CI) | small (`make repro-<paper> SCALE=small`) | off
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from experiments.report.claims import evaluate, load_claims
from experiments.report.render import paper_section
from runtime.paths import repo_root

LIVE_MODES = ("tiny", "small", "off")


def results_dir() -> Path:
    return Path(os.environ.get("EXPERIMENTS_RESULTS_DIR") or repo_root() / "experiments" / "results")


def live_mode() -> str:
    mode = os.environ.get("NOTEBOOK_LIVE", "tiny")
    if mode not in LIVE_MODES:
        raise ValueError(f"NOTEBOOK_LIVE={mode!r}: expected one of {LIVE_MODES}")
    return mode


def claims_markdown(paper_id: str) -> str:
    """This paper's section of REPORT.md, computed now from the result files."""
    claims = load_claims(repo_root() / "experiments" / "claims.yaml")
    paper = next((p for p in claims.papers if p.id == paper_id), None)
    if paper is None:
        raise KeyError(f"no paper {paper_id!r} in experiments/claims.yaml")
    rows = [evaluate(c, results_dir()) for c in paper.claims]
    return "\n".join(paper_section(paper, rows))


def env() -> dict[str, str]:
    extra = {"PYTHONPATH": str(repo_root()), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
             "LLMSYS_NO_PROGRESS": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
    return {**os.environ, **extra}


def run(cmd: list[str], timeout: float = 600) -> str:
    """Run a CLI from the repo root; returns its output, raises with the tail of it on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=repo_root(), env=env(), capture_output=True, text=True, timeout=timeout)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{out[-3000:]}")
    print(f"$ {' '.join(cmd)}  ({time.perf_counter() - t0:.1f} s)")
    return out


def python(*args: str, timeout: float = 600) -> str:
    return run([sys.executable, *args], timeout=timeout)


def figure(script: str, result_name: str, *args: str) -> list[Path]:
    """Run experiments/figures/<script> on a copy of the result JSON in a temp folder; the PNGs it wrote.

    A copy, because some scripts write beside their input and a notebook must not touch the results folder.
    """
    src = results_dir() / result_name
    if not src.is_file():
        print(f"{result_name} not found in {results_dir()}: no figure")
        return []
    tmp = Path(tempfile.mkdtemp(prefix="nbfig-"))
    shutil.copy(src, tmp / result_name)
    python(str(repo_root() / "experiments" / "figures" / script), str(tmp / result_name),
           *[a.replace("{out}", str(tmp)) for a in args], timeout=300)
    return sorted(tmp.glob("**/*.png"))
