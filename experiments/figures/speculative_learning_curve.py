"""Learning curve of a draft training run: acc_0..k and the simulated accept length vs target tokens seen.

    python experiments/figures/speculative_learning_curve.py METRICS_JSONL OUT_JSON OUT_PNG [--window 25]
        [--prior CURVE_JSON] [--lost RUNS_JSON] [--name NAME] [--val-set NAME] [--then M2 ...]

METRICS_JSONL is a run's metrics.jsonl (e.g. <bundle>/train/metrics.jsonl); `--then M2 [--then M3]` appends
runs that continued from its export (`init_from`), steps and tokens counted on. The JSON keeps one row per
logged step (tokens seen so far, step, lr, acc_k, accept_len) and a moving average over `window` steps,
so the curve survives the cache dir that held the run. Runs with held-out validation (`val.examples`) add
`val_points` (val_acc_k, val_accept_len at each validation): the curve to read, since training accuracy on
a small dataset measures memorisation (drawn as markers).

A bundle trained over several sessions on machines that lose their cache: `--prior` starts from an earlier
curve JSON (its rows and rounds kept), `--lost` counts runs whose per-step rows are gone (a JSON object {"rounds": [...]} or a bare list of
{"name", "tokens", "steps", "note", "val_set", "val": [{"step", "val_acc_0", ...}]}: their tokens and
whatever held-out points were recorded elsewhere), then METRICS and the `--then` runs follow. `rounds` lists
every run with its token range; a run name already in the prior curve is refused (no double counting).
The held-out fit (`val_log_fit`) uses only the newest `val_set`, so points on different rows never mix.
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


def learning_curve(rows: list[dict], window: int, *, prior: dict | None = None, lost: list[dict] | None = None,
                   name: str = "run", val_set: str | None = None) -> dict:
    """`rows`: the runs' logged rows in order (each tagged "run"); `prior` / `lost`: see the module doc."""
    points = list(prior["points"]) if prior else []
    val_points = list(prior.get("val_points", [])) if prior else []
    rounds = list(prior.get("rounds", [])) if prior else []
    if prior and not rounds:  # a curve written before rounds were recorded: one round holding all its rows
        rounds = [{"name": "prior", "tokens_from": 0, "tokens_to": prior["tokens_seen"], "rows": "kept"}]
    seen = prior["tokens_seen"] if prior else 0
    step0 = points[-1]["step"] if points else 0
    for run in lost or []:  # tokens counted, rows gone; held-out points placed by step within the run
        steps = max(int(run.get("steps", 0)), 1)
        for v in run.get("val", []):
            val_points.append({"step": step0 + v["step"], "tokens_seen": seen + round(run["tokens"] * v["step"] / steps),
                               "val_set": run.get("val_set"), "run": run["name"], "approx_tokens": True,
                               **{k: x for k, x in v.items() if k.startswith("val_") and k != "val_set"}})
        rounds.append({"name": run["name"], "tokens_from": seen, "tokens_to": seen + int(run["tokens"]),
                       "rows": "lost", "note": run.get("note", "")})
        seen += int(run["tokens"])
        step0 += int(run.get("steps", 0))
    taken = {r["name"] for r in rounds}
    rows = sorted(rows, key=lambda r: r["step"])
    if not rows:
        raise SystemExit("no rows in the metrics file(s)")
    # a step-0 row holds only the starting draft's held-out metrics (no training metrics)
    accs = sorted(k for k in next(r for r in rows if "accept_len" in r) if k.startswith("acc_"))
    run_start: dict[str, int] = {}
    run_end: dict[str, int] = {}
    for r in rows:
        run = r.get("run", name)
        if run in taken and run not in run_start:
            raise SystemExit(f"run '{run}' is already in the prior curve: pass a curve without it")
        run_start.setdefault(run, seen)
        seen += int(r.get("tokens", 0))
        run_end[run] = seen
        if "accept_len" in r:
            points.append({"step": step0 + r["step"], "tokens_seen": seen, "lr": r.get("lr"),
                           "accept_len": r["accept_len"], **{k: r[k] for k in accs}})
        if "val_accept_len" in r:
            val_points.append({"step": step0 + r["step"], "tokens_seen": seen, "val_set": val_set, "run": run,
                               "val_accept_len": r["val_accept_len"],
                               **{f"val_{k}": r[f"val_{k}"] for k in accs if f"val_{k}" in r}})
    rounds += [{"name": run, "tokens_from": start, "tokens_to": run_end[run], "rows": "kept"}
               for run, start in run_start.items()]

    def smooth(key: str) -> list[float]:
        vals = [p[key] for p in points]
        return [sum(vals[max(0, i - window + 1):i + 1]) / len(vals[max(0, i - window + 1):i + 1])
                for i in range(len(vals))]

    keys = sorted(k for k in points[-1] if k.startswith("acc_")) + ["accept_len"]
    smoothed = {k: smooth(k) for k in keys}
    out = {"window": window, "points": points, "smoothed": smoothed, "rounds": rounds,
           "final_smoothed": {k: v[-1] for k, v in smoothed.items()}, "tokens_seen": seen}
    if not lost and not prior:  # training rows fit only within one data mix (a new mix moves the level)
        out["log_fit"] = {k: log_fit([p["tokens_seen"] for p in points], v) for k, v in smoothed.items()}
    if val_points:
        out["val_points"] = val_points
        out["final_val"] = {k: v for k, v in val_points[-1].items() if k.startswith("val_") and k != "val_set"}
        last_set = val_points[-1].get("val_set")
        fit = [p for p in val_points if p["tokens_seen"] > 0 and p.get("val_set") == last_set]
        # ln(tokens) needs tokens; one row set only; each metric over the points that recorded it (>= 3)
        fits = {k: [p for p in fit if k in p] for k in out["final_val"]}
        fits = {k: pts for k, pts in fits.items() if len(pts) >= 3}
        if fits:
            out["val_log_fit"] = {"val_set": last_set, "points": {k: len(pts) for k, pts in fits.items()},
                                  **{k: log_fit([p["tokens_seen"] for p in pts], [p[k] for p in pts], half=False)
                                     for k, pts in fits.items()}}
    return out


def log_fit(tokens: list[int], values: list[float], half: bool = True) -> dict:
    """Least squares value = a + b * ln(tokens) (over the second half of the run, past warm-up, when `half`),
    and what it predicts at 5 M / 20 M / 100 M tokens: a rough extrapolation, not a promise (curves bend)."""
    half = len(tokens) // 2 if half else 0
    xs = [math.log(t) for t in tokens[half:]]
    ys = values[half:]
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / max(sum((x - mx) ** 2 for x in xs), 1e-12)
    a = my - b * mx
    return {"a": a, "b_per_ln_token": b,
            "predicted": {f"{m}M": a + b * math.log(m * 1e6) for m in (5, 20, 100)}}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("metrics")
    ap.add_argument("out_json")
    ap.add_argument("out_png")
    ap.add_argument("--window", type=int, default=25)
    ap.add_argument("--then", action="append", default=[], help="a continuation run's metrics.jsonl (in order)")
    ap.add_argument("--prior", help="an earlier curve JSON written by this script: its rows come first")
    ap.add_argument("--lost", help="JSON list of runs whose per-step rows are lost (tokens, held-out points)")
    ap.add_argument("--name", default="run", help="METRICS' run name in `rounds`")
    ap.add_argument("--val-set", default=None, help="which held-out rows METRICS' val_* were measured on")
    args = ap.parse_args(argv)
    prior = json.loads(Path(args.prior).read_text()) if args.prior else None
    lost = json.loads(Path(args.lost).read_text()) if args.lost else None
    if isinstance(lost, dict):  # {"rounds": [...], "note": ...} or a bare list of rounds
        lost = lost["rounds"]
    rows = [{**r, "run": args.name} for r in read_jsonl(args.metrics)]
    for path in args.then:  # continuation runs restart at step 1: count on from the previous run's last step
        last = max(r["step"] for r in rows)
        rows += [{**r, "step": r["step"] + last, "run": path} for r in read_jsonl(path)]
    curve = learning_curve(rows, args.window, prior=prior, lost=lost, name=args.name, val_set=args.val_set)
    atomic_write_json(Path(args.out_json), curve)
    x = [p["tokens_seen"] / 1e6 for p in curve["points"]]
    # no line across a round whose rows are lost: a gap (NaN) where the training rows jump over one
    gaps = [r["tokens_to"] / 1e6 for r in curve["rounds"] if r["rows"] == "lost" and r["tokens_to"] > r["tokens_from"]]
    cut = [i for i in range(1, len(x)) if any(x[i - 1] < g <= x[i] for g in gaps)]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    for k, vals in curve["smoothed"].items():
        xs, ys = list(x), list(vals)
        for i in reversed(cut):
            xs.insert(i, float("nan"))
            ys.insert(i, float("nan"))
        (b if k == "accept_len" else a).plot(xs, ys, label=k)
    vals = curve.get("val_points", [])
    sets = list(dict.fromkeys(p.get("val_set") for p in vals))  # oldest first
    for k in curve.get("final_val", {}):
        ax = b if k == "val_accept_len" else a
        color = None
        for vs in sets:  # one line per held-out row set (values on different rows are not one curve)
            vp = [(p["tokens_seen"] / 1e6, p[k]) for p in vals if k in p and p.get("val_set") == vs]
            if not vp:
                continue
            newest = vs == sets[-1]
            line, = ax.plot([x for x, _ in vp], [y for _, y in vp], "o--" if newest else "s:", color=color,
                            alpha=1.0 if newest else 0.5, label=f"{k} (held out{': ' + vs if vs else ''})"
                            if newest else None)
            color = line.get_color()
    for r in curve["rounds"][1:]:  # round boundaries (a new data mix moves the training-row level)
        for ax in (a, b):
            ax.axvline(r["tokens_from"] / 1e6, color="0.85", lw=0.8, zorder=0)
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
