"""The SIA generation loop for B sequences at once: ragged ("packed") batching on one KV cache.

All rows live in ONE batch-1 cache, their columns interleaved along the sequence axis; an explicit
mask lets every query see only its own row's columns, and explicit position ids give each row its
own positions (attention does not care about column order). Every step is ONE forward over the
concatenation of the rows' new tokens: 1 for a row that does not steer (it samples from the base
logits first), K candidates for a row that steers (each candidate sees its row's prefix and itself),
0 for a finished row. So compute follows the real token count, as in a ragged-batch serving engine,
and a CPU step (bound by reading the weights) serves many rows for about the price of one. Each row
then keeps one new column; the LM head runs on the kept column only (the value head reads all K).

`guide` replaces the value head as the source of candidate values (e.g. the exact one-token teacher of
the powered evaluation); the candidates still go through the model, whose KV the kept one needs.
`generators` may be SharedNoise streams (steer/noise.py): then samples are paired across methods.

Per row the gate, the sampling generator and the per-token records are the batch-1 loop's
(`decode.generate_steered`): with the same seeds the tokens match it up to float rounding of the
batched forward (tests check token equality). Wall time is the batch's, split evenly over rows.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch
from transformers import DynamicCache

from sparse_align.config import SteerConfig
from sparse_align.steer.decode import SteeredGeneration, TokenRecord, eos_ids, generate_steered
from sparse_align.steer.gate import SteerGate
from sparse_align.steer.junction import choose_token, junction, steered_logits
from sparse_align.value.model import ValueModel

# values of row b's K candidates: (row b, its tokens so far, candidate ids [K], candidate hidden [K, H]) -> [K]
Guide = Callable[[int, list[int], torch.Tensor, torch.Tensor], torch.Tensor]


def _additive(allowed: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return torch.zeros(allowed.shape, dtype=dtype, device=allowed.device).masked_fill_(
        ~allowed, torch.finfo(dtype).min)[None, None]


@torch.inference_mode()
def generate_steered_batch(model: Any, tokenizer: Any, prompts_ids: list[list[int]], cfg: SteerConfig,
                           value_model: ValueModel | None = None, *,
                           generators: list[Any] | None = None, gates: list[SteerGate] | None = None,
                           guide: Guide | None = None) -> list[SteeredGeneration]:
    """One SteeredGeneration per prompt; row b uses generators[b] and gates[b] as the batch-1 loop would."""
    n = len(prompts_ids)
    if n == 0:
        return []
    generators = generators or [None] * n
    gates = gates or [SteerGate(cfg) for _ in range(n)]
    if len(generators) != n or len(gates) != n:
        raise ValueError("need one generator and one gate per prompt")
    needs_values = cfg.mode != "base" and cfg.weight != 0  # w = 0: truncation to the top-K, no values
    if needs_values and value_model is None and guide is None:
        raise ValueError(f"steering mode '{cfg.mode}' needs a value model")
    if any(not p for p in prompts_ids):
        raise ValueError("empty prompt")
    shared = value_model is not None and value_model.shares_backbone and value_model.backbone is model
    if guide is None and shared:
        guide = lambda b, toks, cands, hidden: value_model.head(hidden).float()  # noqa: E731
    if needs_values and guide is None:  # a separate value model has its own cache: use the batch-1 loop
        return [generate_steered(model, tokenizer, p, cfg, value_model, generator=g, gate=gt)
                for p, g, gt in zip(prompts_ids, generators, gates)]
    body, lm_head = model.base_model, model.get_output_embeddings()
    dev = next(model.parameters()).device
    dtype = next(model.parameters()).dtype
    stop = eos_ids(model, tokenizer)
    start = time.perf_counter()
    # prefill: all prompts as one packed sequence, block-causal
    owner = torch.cat([torch.full((len(p),), b, device=dev) for b, p in enumerate(prompts_ids)])
    pos = torch.cat([torch.arange(len(p), device=dev) for p in prompts_ids])
    ids = torch.tensor([t for p in prompts_ids for t in p], device=dev)
    allowed = (owner[:, None] == owner[None, :]) & (pos[:, None] >= pos[None, :])
    cache = DynamicCache()
    hidden = body(input_ids=ids[None], attention_mask=_additive(allowed, dtype), position_ids=pos[None],
                  past_key_values=cache, use_cache=True).last_hidden_state[0]
    last = torch.tensor([len(p) for p in prompts_ids], device=dev).cumsum(0) - 1
    logits = lm_head(hidden[last])  # [n, V]: row b's next-token logits
    next_pos = [len(p) for p in prompts_ids]
    outs: list[list[int]] = [[] for _ in range(n)]
    records: list[list[TokenRecord]] = [[] for _ in range(n)]
    active = list(range(n))  # rows still decoding; logits[i] belongs to active[i]
    k = cfg.top_k
    for _ in range(cfg.max_new_tokens):
        if not active:
            break
        t0 = time.perf_counter()
        top_logits, top_ids, entropy = junction(logits, k, cfg.detector)
        base_logp = torch.log_softmax(logits.float(), -1)
        steer = [gates[b](float(entropy[i])) for i, b in enumerate(active)]
        tokens: list[int] = [-1] * len(active)
        feed: list[torch.Tensor] = []
        for i, b in enumerate(active):
            if steer[i]:
                feed.append(top_ids[i])
            else:
                tokens[i] = choose_token(logits[i], cfg.greedy, generators[b])
                feed.append(torch.tensor([tokens[i]], device=dev))
        widths = torch.tensor([len(f) for f in feed], device=dev)
        q_owner = torch.repeat_interleave(torch.tensor(active, device=dev), widths)
        q_pos = torch.repeat_interleave(torch.tensor([next_pos[b] for b in active], device=dev), widths)
        q = len(q_owner)
        allowed = torch.cat([owner[None, :] == q_owner[:, None], torch.eye(q, dtype=torch.bool, device=dev)], 1)
        length = len(owner)
        hidden = body(input_ids=torch.cat(feed)[None], attention_mask=_additive(allowed, dtype),
                      position_ids=q_pos[None], past_key_values=cache, use_cache=True).last_hidden_state[0]
        offsets = widths.cumsum(0) - widths  # where each row's block starts among the q new columns
        kept = offsets.clone()
        used_logp: dict[int, torch.Tensor] = {}
        for i, b in enumerate(active):
            if steer[i]:
                block = hidden[offsets[i]:offsets[i] + k]
                values = guide(b, outs[b], top_ids[i], block).float() if cfg.weight else torch.zeros(k, device=dev)
                z = steered_logits(logits[i], top_logits[i], top_ids[i], values, cfg.weight)
                used_logp[i] = torch.log_softmax(z.float(), -1)
                tokens[i] = choose_token(z, cfg.greedy, generators[b])
                kept[i] = offsets[i] + int((top_ids[i] == tokens[i]).nonzero()[0, 0])
        if q > len(active):  # drop the candidates that were not chosen
            keep = torch.cat([torch.arange(length, device=dev), length + kept])
            for layer in cache.layers:
                layer.keys = layer.keys.index_select(2, keep)
                layer.values = layer.values.index_select(2, keep)
        owner = torch.cat([owner, torch.tensor(active, device=dev)])
        step_s = (time.perf_counter() - t0) / len(active)
        still = []
        for i, b in enumerate(active):
            tok = tokens[i]
            outs[b].append(tok)
            next_pos[b] += 1
            lp_used = used_logp[i][tok] if i in used_logp else base_logp[i, tok]
            records[b].append(TokenRecord(tok, float(entropy[i]), steer[i], k if steer[i] and cfg.weight else 0, step_s,
                                          float(base_logp[i, tok]), float(lp_used)))
            if tok not in stop:
                still.append(i)
        if still:
            logits = lm_head(hidden[kept[still]])
        active = [active[i] for i in still]
    wall = (time.perf_counter() - start) / n
    return [SteeredGeneration(list(p), o, tokenizer.decode([t for t in o if t not in stop], skip_special_tokens=True),
                              r, wall) for p, o, r in zip(prompts_ids, outs, records)]
