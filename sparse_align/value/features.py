"""Frozen-backbone features for head training, computed once: the final hidden state at every response
prefix, and (rows with candidate targets) at every labelled position's K candidates.

One packed forward per batch of rows: each row is prompt + response followed by its m x K candidate
tokens, with a mask that lets candidate c of position t see only prompt + response[:t] and itself, at
position id len(prompt) + t. So the candidates cost no extra forward, and each feature equals running
prompt + response[:t] + [c] alone (tests check, against full recomputation)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch

from runtime.logging import progress
from sparse_align.steer.junction import DETECTORS


@dataclass
class Features:
    prefix: torch.Tensor  # [N_tok, H]: the value of the prefix ending at each response token
    reward: torch.Tensor  # [N_tok]: the response's final reward (the MSE target)
    tok_row: torch.Tensor  # [N_tok]: owning row
    cand: torch.Tensor  # [N_pos, K, H]
    cand_reward: torch.Tensor  # [N_pos, K]: the teacher on prefix + candidate
    pos_row: torch.Tensor  # [N_pos]
    pos_score: dict[str, torch.Tensor] = field(default_factory=dict)  # detector -> [N_pos]


def _row_layout(row: dict[str, Any]) -> tuple[list[int], list[int], list[int]]:
    """(token ids, position ids, visible-prefix length per token; -1 = causal) for one packed row."""
    seq = row["prompt_ids"] + row["response_ids"]
    ids, pos, vis = list(seq), list(range(len(seq))), [-1] * len(seq)
    for c in row.get("cands", []):
        start = len(row["prompt_ids"]) + c["t"]
        ids += c["ids"]
        pos += [start] * len(c["ids"])
        vis += [start] * len(c["ids"])
    return ids, pos, vis


def _mask(layouts: list[tuple[list[int], list[int], list[int]]], width: int, dtype: torch.dtype) -> torch.Tensor:
    allowed = torch.zeros(len(layouts), width, width, dtype=torch.bool)
    idx = torch.arange(width)
    for b, (ids, _, vis) in enumerate(layouts):
        n = len(ids)
        v = torch.tensor(vis + [-1] * (width - n))
        causal = (idx[None, :] <= idx[:, None]) & (idx[None, :] < n)
        branch = (idx[None, :] < v[:, None]) | (idx[None, :] == idx[:, None])
        allowed[b] = torch.where((v >= 0)[:, None], branch, causal)
        allowed[b, n:] = idx[None, :] == idx[n:, None]  # padding queries see themselves only (no all-masked row)
    return torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]


@torch.inference_mode()
def packed_features(value_model: Any, rows: list[dict[str, Any]], batch_rows: int = 16) -> Features:
    backbone = value_model.backbone
    dev, dtype = value_model.head_device, next(backbone.parameters()).dtype
    hidden_of: dict[int, torch.Tensor] = {}
    order = sorted(range(len(rows)), key=lambda i: len(_row_layout(rows[i])[0]))  # similar widths per batch
    bar = progress(total=len(rows), desc="value features")
    for b in range(0, len(order), batch_rows):
        chunk = order[b:b + batch_rows]
        layouts = [_row_layout(rows[i]) for i in chunk]
        width = max(len(ids) for ids, _, _ in layouts)
        ids = torch.tensor([t + [t[-1]] * (width - len(t)) for t, _, _ in layouts], device=dev)
        pos = torch.tensor([p + [0] * (width - len(p)) for _, p, _ in layouts], device=dev)
        out = backbone(input_ids=ids, position_ids=pos, attention_mask=_mask(layouts, width, dtype).to(dev),
                       output_hidden_states=True, logits_to_keep=1)
        hidden = out.hidden_states[-1].float().cpu()
        for k, i in enumerate(chunk):
            hidden_of[i] = hidden[k, :len(layouts[k][0])]
        bar.update(len(chunk))
    bar.close()
    return _collect(rows, hidden_of)


def _collect(rows: list[dict[str, Any]], hidden_of: dict[int, torch.Tensor]) -> Features:
    """Features in row order from each packed row's hidden states."""
    prefix, reward, tok_row, cand, cand_reward, pos_row = [], [], [], [], [], []
    scores: dict[str, list[float]] = {d: [] for d in DETECTORS}
    for i, row in enumerate(rows):
        hidden = hidden_of[i]
        p, n = len(row["prompt_ids"]), len(row["prompt_ids"]) + len(row["response_ids"])
        prefix.append(hidden[p:n])
        reward.append(torch.full((n - p,), float(row["reward"])))
        tok_row.append(torch.full((n - p,), i))
        at = n
        for c in row.get("cands", []):
            kk = len(c["ids"])
            cand.append(hidden[at:at + kk])
            cand_reward.append(torch.tensor(c["rewards"], dtype=torch.float32))
            pos_row.append(i)
            for d in DETECTORS:
                scores[d].append(float(c.get(d, float("nan"))))
            at += kk
    h = prefix[0].shape[-1] if prefix else 0
    return Features(torch.cat(prefix), torch.cat(reward), torch.cat(tok_row),
                    torch.stack(cand) if cand else torch.zeros(0, 0, h),
                    torch.stack(cand_reward) if cand_reward else torch.zeros(0, 0),
                    torch.tensor(pos_row, dtype=torch.long), {d: torch.tensor(v) for d, v in scores.items()})
