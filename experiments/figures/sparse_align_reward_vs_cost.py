"""Reward vs cost for SIA, dense, random-sparse, BoN and SIA+BoN from a `sparse_align_eval_<scale>.json`.

    python experiments/figures/sparse_align_reward_vs_cost.py experiments/results/sparse_align_eval_full.json
Writes <json stem>_reward_vs_cost.png next to the JSON: x = wall time per prompt in the run (ragged
batches when batch_rows > 1), batch-1 latency per token (interleaved timing, where measured), and
value-model calls per token; y = teacher reward with its 95% CI.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

STYLE = {"base": ("black", "o"), "dense": ("tab:red", "s"), "sia": ("tab:blue", "o"), "random": ("tab:gray", "x"),
         "bon": ("tab:green", "^"), "sia+bon": ("tab:purple", "D"), "sia-prompt": ("tab:cyan", "P")}


def main(path: str) -> Path:
    data = json.loads(Path(path).read_text())
    panels = [("wall_s_per_prompt", "wall time per prompt in the run (s)")]
    if any("b1_s_per_token" in m for m in data["methods"]):
        panels.append(("b1_s_per_token", "batch-1 latency (s/token, interleaved)"))
    panels.append(("value_calls_per_token", "value-model calls per token"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 4.2), sharey=True)
    for ax, (xkey, xlabel) in zip(axes, panels):
        for family, (color, marker) in STYLE.items():
            pts = sorted((m for m in data["methods"] if m["family"] == family and m.get(xkey) is not None),
                         key=lambda m: m[xkey])
            if not pts:
                continue
            xs, ys = [m[xkey] for m in pts], [m["reward"] for m in pts]
            ax.errorbar(xs, ys, yerr=[m["reward_ci95"] for m in pts], color=color, marker=marker, capsize=3,
                        linestyle="-" if len(pts) > 1 else "none", label=family)
            for m in pts:
                ax.annotate(m["method"], (m[xkey], m["reward"]), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"teacher reward ({data['meta']['teacher']})")
    axes[-1].legend(fontsize=8)
    fig.suptitle(f"SIA reward vs cost ({data['meta']['scale']}, {data['meta']['num_prompts']} prompts)")
    fig.tight_layout()
    out = Path(path).with_name(Path(path).stem + "_reward_vs_cost.png")
    fig.savefig(out, dpi=120)
    print(out)
    return out


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "experiments/results/sparse_align_eval_full.json")
