"""Per-method bars by intent (MRR and Hit@1) for every query set in an evaluation JSON.

    python experiments/figures/sopr_rag_by_intent.py experiments/results/sopr_rag_eval.json [--out-dir DIR]
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def plot_set(name: str, qset: dict, metric: str, out: Path) -> Path:
    methods = [m for m in qset["methods"] if not m.startswith("soprag[")]  # ablations have their own table
    intents = sorted({i for m in methods for i in qset["methods"][m]["by_intent"]})
    groups = intents + ["all"]
    width = 0.8 / max(len(methods), 1)
    fig, ax = plt.subplots(figsize=(1.6 + 1.4 * len(groups), 3.6))
    for k, m in enumerate(methods):
        res = qset["methods"][m]
        vals = [res["by_intent"].get(i, {}).get(metric, np.nan) for i in intents] + [res["overall"][metric]]
        ax.bar(np.arange(len(groups)) + (k - (len(methods) - 1) / 2) * width, vals, width, label=m)
    counts = [qset["methods"][methods[0]]["by_intent"].get(i, {}).get("n", 0) for i in intents] + [qset["n"]]
    ax.set_xticks(np.arange(len(groups)), [f"{g}\n(n={c})" for g, c in zip(groups, counts)])
    ax.set_ylim(0, 1)
    ax.set_ylabel(metric.upper() if metric == "mrr" else metric.capitalize())
    ax.set_title(f"{name}: {metric} by intent")
    ax.legend(fontsize=7, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.22))
    fig.tight_layout()
    path = out / f"sopr_rag_{re.sub(r'[^A-Za-z0-9]+', '_', name).strip('_')}_{metric.replace('@', '')}.png"
    fig.savefig(path, dpi=130, bbox_inches="tight")
    plt.close(fig)
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results")
    ap.add_argument("--out-dir", default=None, help="default: beside the results JSON")
    args = ap.parse_args()
    res = json.loads(Path(args.results).read_text(encoding="utf-8"))
    out = Path(args.out_dir or Path(args.results).parent)
    out.mkdir(parents=True, exist_ok=True)
    for name, qset in res["query_sets"].items():
        for metric in ("mrr", "hit@1"):
            print(plot_set(name, qset, metric, out))


if __name__ == "__main__":
    main()
