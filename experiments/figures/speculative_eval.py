"""Figures from experiments/results/speculative_eval.json: tau per benchmark, speed-up vs draft depth / tree size, and
(when the run has side-by-side methods or vLLM baselines, e.g. speculative_compare.json) tokens/s per method per
benchmark with tau, plus per-position acceptance.

    python experiments/figures/speculative_eval.py [speculative_eval.json] [out_dir]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from runtime.paths import results_dir  # noqa: E402
from speculative.evaluate.report import compare_rows  # noqa: E402


def plot_compare(report: dict, out_dir: Path) -> Path | None:
    """Tokens/s of every method (ours, then vLLM's) per benchmark, annotated with tau and speed-up vs our AR;
    right: P(at least i drafted tokens accepted) per method on the first benchmark."""
    benches = [b for b in report.get("engine", {}) if len(compare_rows(report, b)) > 2]
    if not benches:
        return None
    fig, axes = plt.subplots(len(benches), 2, figsize=(12, 3.6 * len(benches)), squeeze=False,
                             gridspec_kw={"width_ratios": [2.2, 1]})
    for row, bench in zip(axes, benches):
        rows = compare_rows(report, bench)
        names = [r["method"] for r in rows]
        tps = [r["tokens_per_s"] for r in rows]
        colors = ["#999999" if "AR" in n or n.endswith("autoregressive") else
                  "#dd8452" if n.startswith("vLLM") else "#4c72b0" for n in names]
        ax = row[0]
        ax.bar(range(len(rows)), tps, color=colors)
        ax.axhline(rows[0]["tokens_per_s"], color="grey", lw=0.8, ls="--")
        ax.set_xticks(range(len(rows)), names, rotation=30, ha="right", fontsize=8)
        ax.set_ylabel("tokens / s")
        ax.set_ylim(0, 1.25 * max(tps))
        ax.set_title(f"{bench}: tokens/s (label: tau, speed-up vs our AR)")
        for i, r in enumerate(rows):
            tau = f"{r['tau']:.2f}" if r.get("tau") is not None else "-"
            ax.text(i, tps[i], f"{tau}\n{r['speedup']:.2f}x", ha="center", va="bottom", fontsize=7)
        ax = row[1]
        for r in rows:
            if r.get("reach"):
                ax.plot(range(1, len(r["reach"]) + 1), r["reach"], "o-", ms=3, label=r["method"])
        ax.set_xlabel("draft position i")
        ax.set_ylabel("P(>= i accepted)")
        ax.set_ylim(0, 1)
        ax.legend(fontsize=6)
    fig.tight_layout()
    path = out_dir / "speculative_compare.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def plot(report: dict, out_dir: Path) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    engine = report.get("engine", {})
    if engine:
        fig, ax = plt.subplots(figsize=(5, 3.2))
        names = list(engine)
        ax.bar(names, [engine[n]["tau"] for n in names], color="#4c72b0")
        ax.axhline(1.0, color="grey", lw=0.8, ls="--")
        ax.set_ylabel("tau (tokens / target forward)")
        ax.set_ylim(0, 1.3 * max(engine[n]["tau"] for n in names))  # room for the value labels
        dec = report["config"]["decode"]
        ax.set_title(f"acceptance length, {dec['mode']} depth {dec['depth']}")
        for i, n in enumerate(names):
            ax.text(i, engine[n]["tau"], f"{engine[n]['tau']:.2f}\n{engine[n]['speedup']:.2f}x", ha="center",
                    va="bottom", fontsize=8)
        fig.tight_layout()
        written.append(out_dir / "speculative_tau_per_benchmark.png")
        fig.savefig(written[-1], dpi=150)
        plt.close(fig)
    sweep = report.get("sweep", [])
    if sweep:
        fig, axes = plt.subplots(1, 2, figsize=(8, 3.2))
        for mode, key, ax, label in (("chain", "depth", axes[0], "chain depth"),
                                     ("tree", "num_draft_tokens", axes[1], "tree size (draft tokens)")):
            pts = sorted((s[key], s["speedup"], s["tau"]) for s in sweep if s["mode"] == mode)
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], "o-", label="speed-up vs AR")
                ax.plot([p[0] for p in pts], [p[2] for p in pts], "s--", label="tau")
            ax.axhline(1.0, color="grey", lw=0.8, ls="--")
            ax.set_xlabel(label)
            ax.legend(fontsize=8)
        fig.tight_layout()
        written.append(out_dir / "speculative_speedup_sweep.png")
        fig.savefig(written[-1], dpi=150)
        plt.close(fig)
    compare = plot_compare(report, out_dir)
    if compare is not None:
        written.append(compare)
    return written


def main() -> None:
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else results_dir() / "speculative_eval.json"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else results_dir() / "figures"
    if not src.is_file():
        raise SystemExit(f"{src} not found: run `make speculative-eval` first")
    for p in plot(json.loads(src.read_text()), out):
        print(p)


if __name__ == "__main__":
    main()
