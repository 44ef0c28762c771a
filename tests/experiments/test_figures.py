"""Every figure script in experiments/figures/ runs on a synthetic result JSON and writes non-empty PNGs."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from runtime.paths import repo_root

FIGURES = repo_root() / "experiments" / "figures"
FIXTURES = Path(__file__).parent / "fixtures" / "results"
METRICS = "speculative_train_metrics.jsonl"  # a training run's metrics.jsonl
# script -> (fixture result file, extra args; {out} = output folder, PNGs beside the input otherwise)
CASES = {
    "speculative_eval.py": ("speculative_eval.json", ["{out}"], 2),
    "sopr_rag_by_intent.py": ("sopr_rag_eval.json", ["--out-dir", "{out}"], 4),  # 2 query sets x (MRR, Hit@1)
    "sparse_align_reward_vs_cost.py": ("sparse_align_eval_small.json", [], 1),
    "speculative_learning_curve.py": (METRICS, ["{out}/curve.json", "{out}/curve.png", "--window", "5"], 1),
}


def test_every_figure_script_has_a_case():
    scripts = {p.name for p in FIGURES.glob("*.py") if not p.name.startswith("_")}
    assert scripts == set(CASES), "add a synthetic result + case for each new figure script"


@pytest.mark.parametrize("script", sorted(CASES))
def test_figure_script_writes_pngs(script: str, tmp_path: Path):
    result, args, n_png = CASES[script]
    shutil.copy(FIXTURES / result, tmp_path / result)
    out = tmp_path / "figs"
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(FIGURES / script), str(tmp_path / result),
                           *[a.replace("{out}", str(out)) for a in args]],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    pngs = sorted(tmp_path.rglob("*.png"))
    assert len(pngs) == n_png, [p.name for p in pngs]
    for png in pngs:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_learning_curve_counts_a_continuation_run_on(tmp_path: Path):
    """`--then`: a run that continued from the first one's export is appended, steps and tokens counted on."""
    import json

    src = (FIXTURES / METRICS).read_text().splitlines()
    first = [json.loads(line) for line in src if line.strip()]
    (tmp_path / "r2.jsonl").write_text("\n".join(src[:3]) + "\n")
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(FIGURES / "speculative_learning_curve.py"),
                           str(FIXTURES / METRICS), str(tmp_path / "c.json"), str(tmp_path / "c.png"),
                           "--then", str(tmp_path / "r2.jsonl"), "--window", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    curve = json.loads((tmp_path / "c.json").read_text())
    steps = [p["step"] for p in curve["points"]]
    last = max(r["step"] for r in first)
    assert steps == sorted(steps) and len(steps) == len(first) + 3 and steps[-1] == last + first[2]["step"]
    assert curve["tokens_seen"] == sum(r["tokens"] for r in first) + sum(r["tokens"] for r in first[:3])


def test_learning_curve_keeps_the_held_out_points(tmp_path: Path):
    """Rows with `val_*` metrics become `val_points` at their tokens seen; the last one is `final_val`."""
    import json

    rows = [json.loads(line) for line in (FIXTURES / METRICS).read_text().splitlines() if line.strip()]
    for i in (1, len(rows) - 1):
        rows[i] |= {"val_acc_0": 0.1 * i, "val_accept_len": 1 + 0.01 * i}
    (tmp_path / "m.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(FIGURES / "speculative_learning_curve.py"), str(tmp_path / "m.jsonl"),
                           str(tmp_path / "c.json"), str(tmp_path / "c.png"), "--window", "2"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    curve = json.loads((tmp_path / "c.json").read_text())
    assert [p["step"] for p in curve["val_points"]] == [rows[1]["step"], rows[-1]["step"]]
    assert curve["val_points"][0]["tokens_seen"] == rows[0]["tokens"] + rows[1]["tokens"]
    assert curve["final_val"] == {"val_acc_0": 0.1 * (len(rows) - 1), "val_accept_len": 1 + 0.01 * (len(rows) - 1)}


def test_learning_curve_continues_a_prior_curve_across_lost_rounds(tmp_path: Path):
    """`--prior` + `--lost`: tokens count on across rounds whose rows are gone, the held-out fit uses one row set
    only, and a run already in the prior curve is refused (no double counting)."""
    import json

    rows = [json.loads(line) for line in (FIXTURES / METRICS).read_text().splitlines() if line.strip()]
    env = {**os.environ, "PYTHONPATH": str(repo_root()), "MPLBACKEND": "Agg"}

    def curve(metrics: Path, out: str, *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, str(FIGURES / "speculative_learning_curve.py"), str(metrics),
                               str(tmp_path / f"{out}.json"), str(tmp_path / f"{out}.png"), "--window", "2", *extra],
                              cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)

    assert curve(FIXTURES / METRICS, "prior", "--name", "round 1").returncode == 0
    lost = [{"name": "round 2", "tokens": 1000, "steps": 10, "val_set": "B", "val": [
        {"step": 0, "val_acc_0": 0.30, "val_accept_len": 1.40}, {"step": 5, "val_acc_0": 0.31},
        {"step": 10, "val_acc_0": 0.32, "val_accept_len": 1.45}]}]
    (tmp_path / "lost.json").write_text(json.dumps({"note": "rows lost", "rounds": lost}))
    new = [r | ({"val_acc_0": 0.34, "val_accept_len": 1.5} if i == len(rows) - 1 else {}) for i, r in enumerate(rows)]
    (tmp_path / "r3.jsonl").write_text("".join(json.dumps(r) + "\n" for r in new))
    proc = curve(tmp_path / "r3.jsonl", "c", "--prior", str(tmp_path / "prior.json"), "--lost",
                 str(tmp_path / "lost.json"), "--name", "round 3", "--val-set", "B")
    assert proc.returncode == 0, proc.stderr[-2000:]
    c = json.loads((tmp_path / "c.json").read_text())
    run_tokens = sum(r["tokens"] for r in rows)
    assert [(r["name"], r["tokens_from"], r["tokens_to"], r["rows"]) for r in c["rounds"]] == [
        ("round 1", 0, run_tokens, "kept"), ("round 2", run_tokens, run_tokens + 1000, "lost"),
        ("round 3", run_tokens + 1000, 2 * run_tokens + 1000, "kept")]
    assert c["tokens_seen"] == 2 * run_tokens + 1000 and "log_fit" not in c
    assert [p["tokens_seen"] for p in c["val_points"]] == [run_tokens, run_tokens + 500, run_tokens + 1000,
                                                           2 * run_tokens + 1000]
    assert c["final_val"] == {"val_acc_0": 0.34, "val_accept_len": 1.5}
    fit = c["val_log_fit"]
    assert fit["val_set"] == "B" and fit["points"] == {"val_acc_0": 4, "val_accept_len": 3}
    assert fit["val_acc_0"]["b_per_ln_token"] > 0
    # the same round again on top of the new curve is double counting
    again = curve(tmp_path / "r3.jsonl", "d", "--prior", str(tmp_path / "c.json"), "--name", "round 3")
    assert again.returncode != 0 and "already in the prior curve" in again.stderr
