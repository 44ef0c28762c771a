"""Where is the one-token reward gain, and which junction detector finds it?

Base samples on training prompts (paired noise). At EVERY response position t the top-K candidates
are scored exactly by the teacher: D_c = teacher(y<t + c) - teacher(y<t). The position's gain is
  max:   max_c D_c - E_{p_K}[D]                       (the best one-token choice vs base sampling)
  steer: E_{softmax(z_K + w (D - mean D))}[D] - E_{p_K}[D]  (what SIA's rule gets with an exact guide)
Each detector steers the positions whose score is in its global top `rate` (as a calibrated tau does);
the share of all gain it captures is compared with the oracle (positions ranked by gain) and random
(= rate in expectation). The recommended default is the detector with the largest mean captured share.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from sparse_align.eval.paired import PairedContext, sample_paired
from sparse_align.steer.junction import DETECTORS
from sparse_align.value.candidates import position_candidates


def gains(deltas: np.ndarray, logp: np.ndarray, weight: float) -> dict[str, np.ndarray]:
    """Per position ([N, K] teacher deltas and base log-probs over the top-K): max and steer gains."""
    p = np.exp(logp - logp.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    base = (p * deltas).sum(-1)
    z = logp + weight * (deltas - deltas.mean(-1, keepdims=True))
    q = np.exp(z - z.max(-1, keepdims=True))
    q /= q.sum(-1, keepdims=True)
    return {"max": deltas.max(-1) - base, "steer": (q * deltas).sum(-1) - base}


def captured(gain: np.ndarray, score: np.ndarray, rate: float) -> float:
    """Share of the total gain at the positions whose score is in the top `rate` (ties: by position order)."""
    n = max(1, int(round(rate * len(gain))))
    picked = np.argsort(-score, kind="stable")[:n]
    total = gain.sum()
    return float(gain[picked].sum() / total) if total > 0 else float("nan")


def measure(model: Any, ctx: PairedContext, steer: Any, seeds: int, rates: list[float]) -> dict[str, Any]:
    gens = sample_paired(ctx, steer.model_copy(update={"mode": "base"}), range(seeds), guide="none",
                         desc="junction samples")
    rows = [{"prompt_ids": g.prompt_ids, "response_ids": g.token_ids, "prompt": p}
            for p, row in zip(ctx.prompts, gens) for g in row]
    per_row = position_candidates(model, rows, [list(range(len(r["response_ids"]))) for r in rows], steer.top_k)
    deltas, logp, scores = [], [], {d: [] for d in DETECTORS}
    for row, cands in zip(rows, per_row):
        resp, dec = row["response_ids"], ctx.tokenizer.decode
        texts = [dec(resp[:c["t"]], skip_special_tokens=True) for c in cands]
        texts += [dec(resp[:c["t"]] + [i], skip_special_tokens=True) for c in cands for i in c["ids"]]
        r = np.array(ctx.teacher.score([row["prompt"]] * len(texts), texts))
        base, cand = r[:len(cands)], r[len(cands):].reshape(len(cands), steer.top_k)
        deltas.append(cand - base[:, None])
        logp.append(np.array([c["logp"] for c in cands]))
        for d in DETECTORS:
            scores[d].append(np.array([c[d] for c in cands]))
    deltas_a, logp_a = np.concatenate(deltas), np.concatenate(logp)
    score_a = {d: np.concatenate(v) for d, v in scores.items()}
    g = gains(deltas_a, logp_a, steer.weight)
    table = {kind: {str(rate): {"oracle": captured(gk, gk, rate), "random": rate,
                                **{d: captured(gk, score_a[d], rate) for d in DETECTORS}} for rate in rates}
             for kind, gk in g.items()}
    mean_share = {d: float(np.mean([table["max"][str(r)][d] for r in rates])) for d in DETECTORS}
    return {"positions": len(deltas_a), "responses": len(rows), "captured": table,
            "gain_total": {k: float(v.sum()) for k, v in g.items()},
            "recommended_detector": max(mean_share, key=mean_share.get), "mean_captured_max": mean_share}
