"""Candidate-level distillation targets: at a few positions of each response, the base model's top-K
candidates for the next token, each scored exactly by the teacher on (response prefix + candidate).

This is what steering needs V to get right: the ORDER of the K candidates at a junction, not the level
of one sampled completion's final reward. The detector scores of the position are stored too, so the
held-out ranking accuracy can be reported per entropy band.
"""

from __future__ import annotations

import random
from typing import Any

import torch

from sparse_align.rewards.base import RewardModel
from sparse_align.steer.cached_lm import lm_logits
from sparse_align.steer.junction import detector_scores
from sparse_align.steer.noise import noise_seed


def choose_positions(n_tokens: int, m: int, *key: int) -> list[int]:
    """m distinct response positions (sorted), drawn uniformly: V must rank at every entropy level."""
    rng = random.Random(noise_seed(*key))
    return sorted(rng.sample(range(n_tokens), min(m, n_tokens)))


@torch.inference_mode()
def position_candidates(model: Any, rows: list[dict[str, Any]], positions: list[list[int]], k: int,
                        batch_rows: int = 16) -> list[list[dict[str, Any]]]:
    """For every row and chosen position t: top-K candidate ids for response[t] given response[:t], and
    the position's detector scores (one right-padded forward per batch; LM head on chosen positions)."""
    dev = next(model.parameters()).device
    out: list[list[dict[str, Any]]] = []
    for b in range(0, len(rows), batch_rows):
        chunk = rows[b:b + batch_rows]
        seqs = [r["prompt_ids"] + r["response_ids"] for r in chunk]
        width = max(len(s) for s in seqs)
        ids = torch.tensor([s + [s[-1]] * (width - len(s)) for s in seqs], device=dev)
        hidden = model.base_model(input_ids=ids).last_hidden_state  # causal: right padding is never seen
        for i, row in enumerate(chunk):
            ts = positions[b + i]
            if not ts:
                out.append([])
                continue
            at = torch.tensor([len(row["prompt_ids"]) + t - 1 for t in ts], device=dev)  # predicts response[t]
            logits = lm_logits(model, hidden[i, at]).float()
            top_logits, top_ids = torch.topk(logits, k, dim=-1)
            scores = detector_scores(logits, top_logits)
            logp = torch.log_softmax(top_logits, -1)  # the base model's distribution on the top-K
            out.append([{"t": t, "ids": top_ids[j].tolist(), "logp": logp[j].tolist(),
                         **{d: float(v[j]) for d, v in scores.items()}} for j, t in enumerate(ts)])
    return out


def label_candidates(model: Any, tokenizer: Any, rows: list[dict[str, Any]], teacher: RewardModel, k: int,
                     m: int, seed: int) -> None:
    """Add row["cands"] (see module doc) to every row, in place: each candidate's teacher reward."""
    positions = [choose_positions(len(r["response_ids"]), m, seed, r["prompt_index"], r.get("sample", 0))
                 for r in rows]
    per_row = position_candidates(model, rows, positions, k)
    for row, cands in zip(rows, per_row):
        texts = [tokenizer.decode(row["response_ids"][:c["t"]] + [cid], skip_special_tokens=True)
                 for c in cands for cid in c["ids"]]
        rewards = teacher.score([row["prompt"]] * len(texts), texts) if texts else []
        for j, c in enumerate(cands):
            c["rewards"] = rewards[j * k:(j + 1) * k]
        row["cands"] = cands
