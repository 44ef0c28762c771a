"""Learning curve of a draft training run: acc_0..k and the simulated accept length vs target tokens seen.

    python experiments/figures/speculative_learning_curve.py METRICS_JSONL OUT_JSON OUT_PNG [--window 25]

METRICS_JSONL is a run's metrics.jsonl (e.g. <bundle>/train/metrics.jsonl); `--then M2 [--then M3]` appends
runs that continued from its export (`init_from`), steps and tokens counted on. The JSON keeps one row per
logged step (tokens seen so far, step, lr, acc_k, accept_len) and a moving average over `window` steps,
so the curve survives the cache dir that held the run. Runs with held-out validation (`val.examples`) add
`val_points` (val_acc_k, val_accept_len at each validation): the curve to read, since training accuracy on
a small dataset measures memorisation (drawn as markers).
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from runtime.checkpoint import atomic_write_json  # noqa: E402
from runtime.logging import read_jsonl  # noqa: E402


def learning_curve(rows: list[dict], window: int) -> dict:
    rows = sorted(rows, key=lambda r: r["step"])
    # a step-0 row holds only the starting draft's held-out metrics (no training metrics)
    accs = sorted(k for k in next(r for r in rows if "accept_len" in r) if k.startswith("acc_"))
    seen, points, val_points = 0, [], []
    for r in rows:
        seen += int(r.get("tokens", 0))
        if "accept_len" in r:
            points.append({"step": r["step"], "tokens_seen": seen, "lr": r.get("lr"), "accept_len": r["accept_len"],
                           **{k: r[k] for k in accs}})
        if "val_accept_len" in r:
            val_points.append({"step": r["step"], "tokens_seen": seen, "val_accept_len": r["val_accept_len"],
                               **{f"val_{k}": r[f"val_{k}"] for k in accs if f"val_{k}" in r}})

    def smooth(key: str) -> list[float]:
        vals = [p[key] for p in points]
        return [sum(vals[max(0, i - window + 1):i + 1]) / len(vals[max(0, i - window + 1):i + 1])
                for i in range(len(vals))]

    smoothed = {k: smooth(k) for k in [*accs, "accept_len"]}
    out = {"window": window, "points": points, "smoothed": smoothed,
           "final_smoothed": {k: v[-1] for k, v in smoothed.items()}, "tokens_seen": seen,
           "log_fit": {k: log_fit([p["tokens_seen"] for p in points], v) for k, v in smoothed.items()}}
    if val_points:
        out["val_points"] = val_points
        out["final_val"] = {k: v for k, v in val_points[-1].items() if k.startswith("val_")}
        fit = [p for p in val_points if p["tokens_seen"] > 0]  # ln(tokens) needs tokens
        if len(fit) >= 4:
            out["val_log_fit"] = {k: log_fit([p["tokens_seen"] for p in fit], [p[k] for p in fit])
                                  for k in out["final_val"]}
    return out


def log_fit(tokens: list[int], values: list[float]) -> dict:
    """Least squares value = a + b * ln(tokens) over the second half of the run (past warm-up), and what it
    predicts at 2 M / 5 M / 20 M tokens: a rough extrapolation, not a promise (curves bend)."""
    half = len(tokens) // 2
    xs = [math.log(t) for t in tokens[half:]]
    ys = values[half:]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-12)
    a = my - b * mx
    return {"a": a, "b_per_ln_token": b,
            "predicted": {f"{m}M": a + b * math.log(m * 1e6) for m in (2, 5, 20)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics")
    ap.add_argument("out_json")
    ap.add_argument("out_png")
    ap.add_argument("--window", type=int, default=25)
    ap.add_argument("--then", action="append", default=[], help="a continuation run's metrics.jsonl (in order)")
    args = ap.parse_args(argv)
    rows = read_jsonl(args.metrics)
    for path in args.then:  # continuation runs restart at step 1: count on from the previous run's last step
        last = max(r["step"] for r in rows)
        rows += [{**r, "step": r["step"] + last, "run": path} for r in read_jsonl(path)]
    curve = learning_curve(rows, args.window)
    atomic_write_json(Path(args.out_json), curve)
    x = [p["tokens_seen"] / 1e6 for p in curve["points"]]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k, vals in curve["smoothed"].items():
        (b if k == "accept_len" else a).plot(x, vals, label=k)
    vx = [p["tokens_seen"] / 1e6 for p in curve.get("val_points", [])]
    for k in curve.get("final_val", {}):
        (b if k == "val_accept_len" else a).plot(vx, [p[k] for p in curve["val_points"]], "o--", label=f"{k} (held out)")
    a.set_xlabel("target tokens seen (M)")
    a.set_ylabel(f"train accuracy ({args.window}-step mean)")
    a.legend()
    b.set_xlabel("target tokens seen (M)")
    b.set_ylabel("simulated accept length")
    fig.tight_layout()
    Path(args.out_png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(args.out_png, dpi=120)
    print(json.dumps({**curve["final_smoothed"], **curve.get("final_val", {})}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
