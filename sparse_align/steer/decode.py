"""The SIA generation loop (batch 1) with per-token records.

When the value model's backbone IS the base model, one KV cache serves both: the K candidates are
scored by a branched forward on the base cache, and the sampled candidate's KV and logits are
kept, so a steered step costs one K-token forward instead of a 1-token forward.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import torch

from sparse_align.config import SteerConfig
from sparse_align.steer.cached_lm import CachedLM, lm_logits
from sparse_align.steer.gate import SteerGate
from sparse_align.steer.junction import choose_token, junction, steered_logits
from sparse_align.steer.scorer import SequenceValueScorer
from sparse_align.value.model import ValueModel


@dataclass
class TokenRecord:
    token_id: int
    entropy: float  # the junction score of the gate's detector (top-K entropy by default)
    steered: bool
    value_calls: int  # candidates scored by the value model at this step
    time_s: float
    logp_base: float  # log p_base(token): perplexity under the base model
    logp_used: float  # log p(token) under the distribution actually sampled: KL estimate vs base


@dataclass
class SteeredGeneration:
    prompt_ids: list[int]
    token_ids: list[int]
    text: str
    records: list[TokenRecord] = field(default_factory=list)
    wall_s: float = 0.0

    @property
    def steered_fraction(self) -> float:
        return sum(r.steered for r in self.records) / max(len(self.records), 1)

    @property
    def value_calls(self) -> int:
        return sum(r.value_calls for r in self.records)


def eos_ids(model: Any, tokenizer: Any) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = {ids} if isinstance(ids, int) else set(ids or [])
    if tokenizer.eos_token_id is not None:
        ids.add(tokenizer.eos_token_id)
    return ids


def render_prompt(tokenizer: Any, prompt: str, *, completion: bool = False) -> list[int]:
    """Chat-template the prompt as a user turn; `completion`: the raw text (base models continue it)."""
    if completion:
        return tokenizer(prompt)["input_ids"]
    text = tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                         add_generation_prompt=True)
    return tokenizer(text, add_special_tokens=False)["input_ids"]


@torch.inference_mode()
def generate_steered(model: Any, tokenizer: Any, prompt_ids: list[int], cfg: SteerConfig,
                     value_model: ValueModel | None = None, *, generator: Any = None,
                     gate: SteerGate | None = None) -> SteeredGeneration:
    if cfg.mode != "base" and value_model is None:
        raise ValueError(f"steering mode '{cfg.mode}' needs a value model")
    if not prompt_ids:
        raise ValueError("empty prompt")
    shared = value_model is not None and value_model.shares_backbone and value_model.backbone is model
    scorer = None if shared or value_model is None else SequenceValueScorer(value_model)
    gate = gate or SteerGate(cfg)
    stop = eos_ids(model, tokenizer)
    lm = CachedLM(model)
    start = time.perf_counter()
    logits, _ = lm.append(prompt_ids)
    out: list[int] = []
    records: list[TokenRecord] = []
    for _ in range(cfg.max_new_tokens):
        t0 = time.perf_counter()
        top_logits, top_ids, entropy = junction(logits, cfg.top_k, cfg.detector)
        steer = gate(float(entropy))
        cand_hidden = None
        base_logp = torch.log_softmax(logits.float(), -1)
        used_logp = base_logp
        if steer:
            if shared:
                _, cand_hidden = lm.branch(top_ids, with_logits=False)
                values = value_model.head(cand_hidden).float()
            else:
                values = scorer.score(prompt_ids + out, top_ids)
            steered = steered_logits(logits, top_logits, top_ids, values, cfg.weight)
            used_logp = torch.log_softmax(steered.float(), -1)
            token = choose_token(steered, cfg.greedy, generator)
        else:
            token = choose_token(logits, cfg.greedy, generator)
        out.append(token)
        done = token in stop
        if cand_hidden is not None:
            j = int((top_ids == token).nonzero()[0, 0])
            lm.commit(j)
            logits = lm_logits(model, cand_hidden[j])  # the LM head on the kept candidate only
        elif not done:
            logits, _ = lm.append([token])
        records.append(TokenRecord(token, float(entropy), steer, cfg.top_k if steer else 0,
                                   time.perf_counter() - t0, float(base_logp[token]), float(used_logp[token])))
        if done:
            break
    text = tokenizer.decode([t for t in out if t not in stop], skip_special_tokens=True)
    return SteeredGeneration(list(prompt_ids), out, text, records, time.perf_counter() - start)
