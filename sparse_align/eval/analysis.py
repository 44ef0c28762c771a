"""Pre-registered statistics of the powered evaluation, on per-prompt means of the first `seeds` samples.

Primary (fixed in advance, Holm-corrected over `primary_rates`): SIA@r beats random@r (at SIA's realised
rate). "Matches dense": some SIA rate in 20-40% is equivalent to dense within +-margin (TOST) while
adding <= 1/2 of dense's extra batch-1 time per token. Everything else is reported unadjusted, as
secondary: SIA vs random at other rates, the w = 0 controls, the exact guide, BoN, the second scorers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparse_align.config import SteerEvalConfig
from sparse_align.eval.arms import rate_name
from sparse_align.eval.stats import equivalence, holm_comparisons, paired, prompt_means


def _means(arm: dict[str, Any], seeds: int, key: str = "rewards", scorer: str | None = None) -> np.ndarray:
    grid = arm["scores"][scorer] if scorer else arm[key]
    return prompt_means([r[:seeds] for r in grid])


def _pair(arms: dict[str, Any], a: str, b: str, cfg: SteerEvalConfig, scorer: str | None = None) -> dict[str, Any] | None:
    if a not in arms or b not in arms:
        return None
    res = paired(_means(arms[a], cfg.seeds, scorer=scorer), _means(arms[b], cfg.seeds, scorer=scorer),
                 cfg.bootstrap, cfg.seed)
    return {k: v for k, v in res.items() if k != "_boot"}


def secondary_pairs(cfg: SteerEvalConfig) -> list[tuple[str, str]]:
    out = [(f"sia@{rate_name(r)}", f"random@{rate_name(r)}") for r in cfg.sia_rates if r not in cfg.primary_rates]
    out += [(f"sia@{rate_name(r)}", f"sia-w0@{rate_name(r)}") for r in cfg.w0_rates]
    out += [(f"sia-exact@{rate_name(r)}", f"random@{rate_name(r)}") for r in cfg.exact_rates]
    out += [(f"sia-exact@{rate_name(r)}", f"sia@{rate_name(r)}") for r in cfg.exact_rates]
    out += [("dense", "base"), ("dense", "dense-w0"), ("dense-exact", "dense"), ("posttrained", "base")]
    out += [(f"sia@{rate_name(r)}", "base") for r in cfg.sia_rates]
    return out


def analyse(arms: dict[str, Any], cfg: SteerEvalConfig, timing: dict[str, Any] | None = None) -> dict[str, Any]:
    primary = {}
    for r in cfg.primary_rates:
        a, b = f"sia@{rate_name(r)}", f"random@{rate_name(r)}"
        if a in arms and b in arms:
            primary[f"{a} - {b}"] = paired(_means(arms[a], cfg.seeds), _means(arms[b], cfg.seeds), cfg.bootstrap,
                                           cfg.seed)
    secondary = {}
    if len(primary) < len(cfg.primary_rates):  # a run in progress: Holm over fewer tests is not the registered one
        secondary = {f"{k} (interim, unadjusted)": {x: v for x, v in t.items() if x != "_boot"}
                     for k, t in primary.items()}
        primary = {}
    primary = holm_comparisons(primary, cfg.alpha) if primary else {}
    secondary.update({f"{a} - {b}": p for a, b in secondary_pairs(cfg) if (p := _pair(arms, a, b, cfg)) is not None})
    by_scorer = {s: {f"sia@{rate_name(r)} - random@{rate_name(r)}":
                     _pair(arms, f"sia@{rate_name(r)}", f"random@{rate_name(r)}", cfg, s) for r in cfg.primary_rates}
                 for s in next(iter(arms.values()), {}).get("scores", {})}
    matches = []
    dense_added = (timing or {}).get("dense", {}).get("added_vs_base")
    for name, arm in arms.items():
        if arm["family"] != "sia" or not 0.2 <= (arm.get("target_rate") or 0) <= 0.4 or "dense" not in arms:
            continue
        eq = equivalence(_means(arm, cfg.seeds), _means(arms["dense"], cfg.seeds), cfg.equivalence_margin,
                         cfg.alpha, cfg.bootstrap, cfg.seed)
        added = (timing or {}).get(name, {}).get("added_vs_base")
        time_ok = None if added is None or dense_added is None else added <= 0.5 * dense_added
        matches.append({"method": name, "steered_fraction": arm.get("steered_fraction"), **eq,
                        "added_s_per_token": added, "dense_added_s_per_token": dense_added, "time_ok": time_ok})
    claims = claim_verdicts(primary, matches, cfg)
    return {"primary": primary, "secondary": secondary, "by_scorer": by_scorer, "matches_dense": matches,
            "verdict": {"beats_random": {k: v["significant"] for k, v in primary.items()},
                        "beats_random_all": _met(claims["random"]),
                        "matches_dense_at_half_time": _met(claims["all_dense"])},
            "claims": claims,
            "n_prompts": len(next(iter(arms.values()))["rewards"]) if arms else 0, "seeds": cfg.seeds}


MET, NOT_MET, NOT_MEASURED = "met", "not met", "not measured"  # the words experiments/report/claims.py uses


def _met(claim: dict[str, Any]) -> bool | None:
    return {MET: True, NOT_MET: False}.get(claim["verdict"])


def _claim(verdict: str, number: str, detail: list[str]) -> dict[str, Any]:
    return {"verdict": verdict, "number": number, "detail": "; ".join(detail)}


def claim_verdicts(primary: dict[str, Any], matches: list[dict[str, Any]], cfg: SteerEvalConfig) -> dict[str, Any]:
    """SIA's claims (experiments/claims.yaml, `sia_target` parts) decided by the pre-registered statistics,
    never by point estimates: keyed by part, each {verdict: met | not met | not measured, number, detail}.

    random: SIA beats random-sparse = EVERY pre-registered rate's comparison is Holm-significant (the Holm
        lower confidence bound of SIA - random is > 0); a CI that reaches 0 (e.g. SIA ~ random) is not met.
    reward: some SIA rate in 20-40% matches dense = TOST equivalence (the 90% CI of SIA - dense inside
        +-margin); a point estimate near dense with a wide CI is not met.
    time: some SIA rate in 20-40% adds <= 1/2 of dense's batch-1 time per token (not measured without timing).
    all / all_dense: one SIA rate meets reward and time together (all_dense), and also beats random at that
        rate with Holm significance (all: that rate must be one of the pre-registered ones)."""
    out: dict[str, Any] = {}
    tests = [f"{k}: {t['diff']:+.3f} [95% CI {t['lo']:+.3f}, {t['hi']:+.3f}], Holm lower bound {t['holm_lower']:+.3f}"
             f" -> {'significant' if t['significant'] else 'not significant'}" for k, t in primary.items()]
    if not primary:
        out["random"] = _claim(NOT_MEASURED, "-", ["the pre-registered SIA-vs-random comparisons are not all run"])
    else:
        worst = min(primary, key=lambda k: primary[k]["holm_lower"])
        ok = all(t["significant"] for t in primary.values())
        out["random"] = _claim(MET if ok else NOT_MET, tests[list(primary).index(worst)], tests)

    def eq_text(m: dict[str, Any]) -> str:
        return (f"{m['method']}: SIA - dense {m['diff']:+.3f} [90% CI {m['lo']:+.3f}, {m['hi']:+.3f}] vs "
                f"+-{m['margin']:g} -> {'equivalent' if m['equivalent'] else 'not equivalent'}")

    def time_text(m: dict[str, Any]) -> str:
        if m["time_ok"] is None:
            return f"{m['method']}: batch-1 time not measured"
        return (f"{m['method']}: added {m['added_s_per_token']:+.4f} vs dense {m['dense_added_s_per_token']:+.4f} "
                f"s/token -> {'<=' if m['time_ok'] else '>'} half")

    if not matches:
        none = ["no SIA arm with target rate in 20-40% and no dense arm to compare with"]
        for part in ("reward", "time", "all", "all_dense"):
            out[part] = _claim(NOT_MEASURED, "-", none)
        return out
    eq = [m for m in matches if m["equivalent"]]
    out["reward"] = _claim(MET if eq else NOT_MET, eq_text((eq or matches)[0]), [eq_text(m) for m in matches])
    timed = [m for m in matches if m["time_ok"] is not None]
    fast = [m for m in timed if m["time_ok"]]
    out["time"] = _claim(MET if fast else NOT_MET if timed else NOT_MEASURED,
                         time_text((fast or timed or matches)[0]), [time_text(m) for m in matches])

    def primary_of(m: dict[str, Any]) -> dict[str, Any] | None:
        name = m["method"]  # "sia@20%" -> "sia@20% - random@20%"
        return primary.get(f"{name} - random@{name.split('@', 1)[1]}") if "@" in name else None

    both = [m for m in eq if m["time_ok"]]
    undecided = [m for m in eq if m["time_ok"] is None]
    out["all_dense"] = _claim(MET if both else NOT_MEASURED if undecided else NOT_MET,
                              f"{(both or eq or matches)[0]['method']}", [f"{eq_text(m)}; {time_text(m)}" for m in matches])
    rows, verdicts = [], []
    for m in matches:
        t = primary_of(m)
        beats = None if t is None else bool(t["significant"])
        rows.append(f"{m['method']}: reward {m['equivalent']}, time {m['time_ok']}, beats random (Holm) "
                    f"{'not pre-registered' if beats is None else beats}")
        parts = [m["equivalent"], m["time_ok"], beats]
        verdicts.append(MET if all(p is True for p in parts) else NOT_MET if False in parts else NOT_MEASURED)
    best = MET if MET in verdicts else NOT_MEASURED if NOT_MEASURED in verdicts else NOT_MET
    out["all"] = _claim(best, rows[verdicts.index(best)], rows)
    return out
