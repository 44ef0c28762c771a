"""Aggregate decode statistics into the numbers reported: tau, per-position acceptance, tokens/s, speed-up."""

from __future__ import annotations

from collections.abc import Sequence

from speculative.decode.engine import DecodeStats


def acceptance_by_position(accepted: Sequence[int], depth: int) -> dict[str, list[float]]:
    """reach[i] = P(at least i+1 drafted tokens accepted); cond[i] = P(position i+1 accepted | i accepted)."""
    n = max(len(accepted), 1)
    reach = [sum(a >= i for a in accepted) / n for i in range(1, depth + 1)]
    cond, prev = [], 1.0
    for r in reach:
        cond.append(r / prev if prev > 0 else 0.0)
        prev = r
    return {"reach": reach, "conditional": cond}


def summarize(spec: list[DecodeStats], ar: list[DecodeStats], depth: int) -> dict:
    """Totals over a benchmark: spec and AR stats come from the same prompts, measured back to back."""
    accepted = [a for s in spec for a in s.accepted]
    spec_tokens = sum(s.new_tokens for s in spec)
    ar_tokens = sum(s.new_tokens for s in ar)
    spec_time = sum(s.prefill_s + s.decode_s for s in spec)
    ar_time = sum(s.prefill_s + s.decode_s for s in ar)
    spec_tps = spec_tokens / max(spec_time, 1e-9)
    ar_tps = ar_tokens / max(ar_time, 1e-9)
    # decode-only rates exclude the prefill, which speculation does not change
    spec_dec = sum(s.new_tokens - 1 for s in spec) / max(sum(s.decode_s for s in spec), 1e-9)
    ar_dec = sum(s.new_tokens - 1 for s in ar) / max(sum(s.decode_s for s in ar), 1e-9)
    return {
        "turns": len(spec),
        "new_tokens": spec_tokens,
        "tau": (sum(accepted) + len(accepted)) / max(len(accepted), 1),
        "acceptance": acceptance_by_position(accepted, depth),
        "spec_tokens_per_s": spec_tps,
        "ar_tokens_per_s": ar_tps,
        "speedup": spec_tps / max(ar_tps, 1e-9),
        "decode_speedup": spec_dec / max(ar_dec, 1e-9),
        "time_split_s": {"prefill": sum(s.prefill_s for s in spec), "draft": sum(s.draft_s for s in spec),
                         "verify": sum(s.verify_s for s in spec),
                         "other": sum(s.decode_s - s.draft_s - s.verify_s for s in spec)},
        # the speculative arithmetic, measured: one draft+verify round costs `round_cost_ar_steps` AR steps,
        # so decoding is faster than AR only while tau exceeds it (the break-even acceptance length)
        "rounds": len(accepted),
        "ar_step_s": sum(s.decode_s for s in ar) / max(sum(s.new_tokens - 1 for s in ar), 1),
        "round_cost_ar_steps": (sum(s.draft_s + s.verify_s for s in spec) / max(len(accepted), 1))
        / max(sum(s.decode_s for s in ar) / max(sum(s.new_tokens - 1 for s in ar), 1), 1e-9),
        "sources": source_split(spec),
        "same_output_as_ar": None,  # filled by the runner (greedy only)
    }


def source_split(spec: Sequence[DecodeStats]) -> dict[str, dict[str, float]]:
    """Which drafter the accepted tokens came from (model = EAGLE-3 / draft LM, lookup, both = a node both
    proposed), how many nodes each source put up for verification, and the share of those accepted."""
    drafted: dict[str, int] = {}
    accepted: dict[str, int] = {}
    for s in spec:
        for k, v in s.drafted_by_source.items():
            drafted[k] = drafted.get(k, 0) + v
        for k, v in s.accepted_by_source.items():
            accepted[k] = accepted.get(k, 0) + v
    rate = {k: accepted.get(k, 0) / n for k, n in drafted.items() if n}
    return {"drafted": drafted, "accepted": accepted, "accept_rate": rate}
