"""The powered evaluation's JSON (per-prompt, per-seed rewards of every arm, so every statistic can be
recomputed) and markdown report (arms table, pre-registered tests, equivalence, verdict)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json, atomic_write_text
from runtime.results import with_provenance
from sparse_align.eval.stats import prompt_means


def _f(v: Any, fmt: str) -> str:
    return "-" if v is None else fmt.format(v)


def arms_table(result: dict[str, Any], seeds: int) -> list[str]:
    scorers = sorted(next(iter(result["arms"].values()), {}).get("scores", {}))
    timing = result.get("timing") or {}
    head = ["method", "reward [95% CI]", *scorers, "steered", "value calls/tok", "KL/tok", "b1 added s/tok"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, a in result["arms"].items():
        ci = a["reward_ci"]
        cells = [name, f"{ci['mean']:.3f} [{ci['lo']:.3f}, {ci['hi']:.3f}]"]
        cells += [f"{prompt_means([r[:seeds] for r in a['scores'][s]]).mean():.3f}" for s in scorers]
        cells += [_f(a.get("steered_fraction"), "{:.2f}"), _f(a.get("value_calls_per_token"), "{:.2f}"),
                  _f(a.get("kl_per_token"), "{:.3f}"), _f(timing.get(name, {}).get("added_vs_base"), "{:+.4f}")]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def analysis_lines(an: dict[str, Any], margin: float) -> list[str]:
    out = ["## Primary: SIA beats random-sparse (Holm over the pre-registered rates)", ""]
    for name, t in an["primary"].items():
        out.append(f"- {name}: {t['diff']:+.3f} [95% CI {t['lo']:+.3f}, {t['hi']:+.3f}], p one-sided "
                   f"{t['p_one_sided']:.4f}, Holm p {t['p_holm']:.4f}, lower bound at level {t['holm_level']:.3f}: "
                   f"{t['holm_lower']:+.3f} -> {'SIGNIFICANT' if t['significant'] else 'not significant'}")
    out += ["", f"## Matches dense: equivalence within +-{margin} (90% CI) at <= 1/2 of dense's added time", ""]
    for m in an["matches_dense"]:
        out.append(f"- {m['method']} (steered {_f(m['steered_fraction'], '{:.2f}')}): SIA - dense {m['diff']:+.3f} "
                   f"[{m['lo']:+.3f}, {m['hi']:+.3f}] -> {'equivalent' if m['equivalent'] else 'not equivalent'}; "
                   f"added {_f(m['added_s_per_token'], '{:.4f}')} vs dense {_f(m['dense_added_s_per_token'], '{:.4f}')}"
                   f" s/token -> time ok: {m['time_ok']}")
    out += ["", "## Secondary (unadjusted)", ""]
    out += [f"- {k}: {v['diff']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]" for k, v in an["secondary"].items()]
    for scorer, tests in an["by_scorer"].items():
        out += [f"- [{scorer}] {k}: {v['diff']:+.3f} [{v['lo']:+.3f}, {v['hi']:+.3f}]" for k, v in tests.items() if v]
    v = an["verdict"]
    out += ["", "## Verdict", "", f"- beats random (Holm): {v['beats_random']}",
            f"- some SIA rate in 20-40% matches dense at <= half its added time: {v['matches_dense_at_half_time']}"]
    titles = {"reward": "matches dense's reward (equivalence)", "time": "<= 1/2 of dense's added time",
              "random": "beats random-sparse at every pre-registered rate (Holm)", "all": "all three at one rate"}
    claims = an.get("claims") or {}
    out += [f"- claim `{part}` ({title}): **{claims[part]['verdict']}** — {claims[part]['number']}"
            for part, title in titles.items() if part in claims]
    return out


def legacy_methods(result: dict[str, Any]) -> list[dict[str, Any]]:
    """The single-sample report's `methods` rows (experiments/claims.yaml reads them): reward = mean of the
    per-prompt means, reward_ci95 = half the bootstrap CI; wall_s = the batch-1 s/token of the interleaved
    timing where measured (the claims compare differences to base), else the arm's decoding time."""
    timing = result.get("timing") or {}
    rows = []
    for name, a in result["arms"].items():
        ci = a["reward_ci"]
        b1 = timing.get(name, {}).get("median_s_per_token")
        rows.append({"method": name, "family": a["family"], "target_rate": a.get("target_rate"),
                     "reward": ci["mean"], "reward_ci95": (ci["hi"] - ci["lo"]) / 2,
                     "steered_fraction": a.get("steered_fraction"), "wall_s": b1 if b1 is not None else a.get("gen_wall_s"),
                     "value_calls_per_token": a.get("value_calls_per_token")})
    return rows


def write_powered_report(result: dict[str, Any], meta: dict[str, Any], json_path: Path, md_path: Path) -> None:
    result = {**result, "methods": legacy_methods(result), "meta": meta}
    atomic_write_json(json_path, with_provenance(result, config=meta.get("config"), seed=meta.get("seed"),
                                                 wall_time_s=meta.get("total_wall_s")))
    seeds = meta["seeds"]
    md = [f"# SIA powered evaluation ({meta['name']}, task {meta['task']})", "",
          f"{meta['num_prompts']} held-out prompts x {seeds} seeds, Gumbel noise shared across arms per (prompt, seed, "
          f"position); teacher {meta['teacher']}; value model {meta['value_model']}; detector {meta['detector']}; "
          f"K={meta['top_k']}, w={meta['weight']}, {meta['max_new_tokens']} new tokens; CIs: bootstrap over prompts "
          f"({meta['bootstrap']} resamples). BoN arms: exact mean over all n-subsets of the pool arm's samples.", "",
          f"value model held-out pairwise accuracy: {meta.get('value_pairwise', '-')}", "",
          *arms_table(result, seeds), "", *analysis_lines(result["analysis"], meta["equivalence_margin"]), ""]
    atomic_write_text(md_path, "\n".join(md))
