"""Candidate-level distillation targets: at a few positions of each response, the base model's top-K
candidates for the next token, each scored exactly by the teacher on (response prefix + candidate).

This is what steering needs V to get right: the ORDER of the K candidates at a junction, not the level
of one sampled completion's final reward. The detector scores of the position are stored too, so the
held-out ranking accuracy can be reported per entropy band.

Positions: `m` drawn uniformly, plus, per entropy band (lo, hi, n), n more drawn among the positions whose
top-K entropy is in [lo, hi). A base model puts few positions in the low bands (Gemma-3-270M: ~12% under
1 nat), so uniform draws leave V little to learn its ranking from there. The positions are a deterministic function
of the row, so `top_up_candidates` can add positions to data labelled under fewer (no resampling).
"""

from __future__ import annotations

import random
from typing import Any

import torch

from sparse_align.rewards.base import RewardModel
from sparse_align.steer.cached_lm import lm_logits
from sparse_align.steer.junction import detector_scores, topk_junction
from sparse_align.steer.noise import noise_seed


def choose_positions(n_tokens: int, m: int, *key: int) -> list[int]:
    """m distinct response positions (sorted), drawn uniformly: V must rank at every entropy level."""
    rng = random.Random(noise_seed(*key))
    return sorted(rng.sample(range(n_tokens), min(m, n_tokens)))


def choose_band_positions(entropy: list[float], band: tuple[float, float, int], taken: list[int], *key: int
                          ) -> list[int]:
    """n more positions (sorted) with top-K entropy in [lo, hi), not in `taken` (fewer if the band is short).
    `key` should end with the band's index: each band draws from its own stream, so adding a band (or
    uniform positions) leaves the others' draws, and the labels made for them, as they were."""
    lo, hi, n = band
    pool = [t for t, e in enumerate(entropy) if lo <= e < hi and t not in taken]
    rng = random.Random(noise_seed(*key))
    return sorted(rng.sample(pool, min(n, len(pool))))


def _hidden(model: Any, chunk: list[dict[str, Any]]) -> torch.Tensor:
    """Final hidden states of prompt + response for each row (one right-padded forward)."""
    seqs = [r["prompt_ids"] + r["response_ids"] for r in chunk]
    width = max(len(s) for s in seqs)
    ids = torch.tensor([s + [s[-1]] * (width - len(s)) for s in seqs], device=next(model.parameters()).device)
    return model.base_model(input_ids=ids).last_hidden_state  # causal: right padding is never seen


def _steps(row: dict[str, Any]) -> torch.Tensor:
    """Hidden-state index that predicts each response token."""
    return torch.arange(len(row["response_ids"])) + len(row["prompt_ids"]) - 1


@torch.inference_mode()
def response_entropy(model: Any, rows: list[dict[str, Any]], k: int, batch_rows: int = 16,
                     chunk_positions: int = 64) -> list[list[float]]:
    """Top-K entropy of the base model's next-token distribution at every response position of every row
    (the LM head runs on `chunk_positions` rows of hidden states at a time: a 262k vocabulary is large)."""
    out: list[list[float]] = []
    for b in range(0, len(rows), batch_rows):
        chunk = rows[b:b + batch_rows]
        hidden = _hidden(model, chunk)
        for i, row in enumerate(chunk):
            at = _steps(row).to(hidden.device)
            ents = [topk_junction(lm_logits(model, hidden[i, at[j:j + chunk_positions]]).float(), k)[2]
                    for j in range(0, len(at), chunk_positions)]
            out.append(torch.cat(ents).tolist() if ents else [])
    return out


@torch.inference_mode()
def position_candidates(model: Any, rows: list[dict[str, Any]], positions: list[list[int]], k: int,
                        batch_rows: int = 16) -> list[list[dict[str, Any]]]:
    """For every row and chosen position t: top-K candidate ids for response[t] given response[:t], and
    the position's detector scores (one right-padded forward per batch; LM head on chosen positions)."""
    out: list[list[dict[str, Any]]] = []
    for b in range(0, len(rows), batch_rows):
        chunk = [r for r, ts in zip(rows[b:b + batch_rows], positions[b:b + batch_rows]) if ts]
        hidden = _hidden(model, chunk) if chunk else None
        i = -1
        for row, ts in zip(rows[b:b + batch_rows], positions[b:b + batch_rows]):
            if not ts:
                out.append([])
                continue
            i += 1
            at = _steps(row)[ts].to(hidden.device)  # predicts response[t]
            logits = lm_logits(model, hidden[i, at]).float()
            top_logits, top_ids = torch.topk(logits, k, dim=-1)
            scores = detector_scores(logits, top_logits)
            logp = torch.log_softmax(top_logits, -1)  # the base model's distribution on the top-K
            out.append([{"t": t, "ids": top_ids[j].tolist(), "logp": logp[j].tolist(),
                         **{d: float(v[j]) for d, v in scores.items()}} for j, t in enumerate(ts)])
    return out


def wanted_positions(model: Any, rows: list[dict[str, Any]], k: int, m: int,
                     bands: list[tuple[float, float, int]], seed: int) -> list[list[int]]:
    """Every row's candidate positions: m uniform + each band's draws (module doc)."""
    keys = [(seed, r["prompt_index"], r.get("sample", 0)) for r in rows]
    out = [choose_positions(len(r["response_ids"]), m, *key) for r, key in zip(rows, keys)]
    if not any(n for _, _, n in bands):
        return out
    ents = response_entropy(model, rows, k)
    for i, band in enumerate(bands):
        out = [sorted(ts + choose_band_positions(e, band, ts, *key, 1 + i)) for ts, e, key in zip(out, ents, keys)]
    return out


def label_candidates(model: Any, tokenizer: Any, rows: list[dict[str, Any]], teacher: RewardModel,
                     positions: list[list[int]], k: int) -> int:
    """Make each row's `cands` (see module doc) exactly `positions[i]`, in place: labels already there are
    kept, missing positions are labelled (top-K + each candidate's teacher reward), others dropped.
    Returns how many positions were labelled."""
    have = [{c["t"]: c for c in r.get("cands", []) if len(c["ids"]) == k} for r in rows]
    missing = [[t for t in ts if t not in h] for ts, h in zip(positions, have)]
    per_row = position_candidates(model, rows, missing, k)
    texts = [tokenizer.decode(row["response_ids"][:c["t"]] + [cid], skip_special_tokens=True)
             for row, cands in zip(rows, per_row) for c in cands for cid in c["ids"]]
    prompts = [row["prompt"] for row, cands in zip(rows, per_row) for c in cands for _ in c["ids"]]
    rewards = teacher.score(prompts, texts) if texts else []
    at = 0
    for row, cands, h, ts in zip(rows, per_row, have, positions):
        for c in cands:
            c["rewards"] = rewards[at:at + k]
            at += k
            h[c["t"]] = c
        row["cands"] = [h[t] for t in ts]
    return sum(len(m) for m in missing)
