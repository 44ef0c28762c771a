"""Typed settings of the speculative decoding engine (one object, passed explicitly)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import StrictModel


class LookupConfig(StrictModel):
    """Prompt lookup (n-gram copy from prompt + generated text), as vLLM's `ngram` proposer: match the last
    n tokens (n = max_n down to min_n) against their most recent earlier occurrence, propose the next k."""

    min_n: int = Field(2, ge=1, le=16)
    max_n: int = Field(4, ge=1, le=16)
    k: int = Field(5, ge=1, le=64)
    # per-token acceptance prior of a lookup proposal and how fast it adapts to what the target accepted
    # (confidence of lookup nodes = rate^depth; only matters with min_draft_prob > 0 or a tree budget)
    prior_accept: float = Field(0.6, gt=0.0, lt=1.0)
    prior_weight: float = Field(2.0, ge=0.0)
    decay: float = Field(0.8, gt=0.0, le=1.0)
    # cross-request lookup: earlier responses of this drafter (this engine's traffic) are searched when the
    # request's own text has no match; up to this many tokens kept, oldest dropped first (0 = off)
    history_tokens: int = Field(0, ge=0)
    history_min_n: int = Field(2, ge=1, le=16)  # shortest suffix matched against the history

    @model_validator(mode="after")
    def _n_order(self) -> LookupConfig:
        if self.min_n > self.max_n:
            raise ValueError(f"lookup.min_n ({self.min_n}) > lookup.max_n ({self.max_n})")
        if self.history_tokens > 0 and self.history_min_n > self.max_n:
            raise ValueError(f"lookup.history_min_n ({self.history_min_n}) > lookup.max_n ({self.max_n})")
        return self


class DecodeConfig(StrictModel):
    """How drafts are built and verified.

    chain: top-1 drafting to `depth` tokens (num_draft_tokens is forced to depth).
    tree:  EAGLE-2 dynamic tree: expand the `topk` best nodes per depth, keep the `num_draft_tokens` best
           nodes overall by cumulative draft log-prob, verify them with one target forward.
    min_draft_prob > 0 (either mode): dynamic draft length, stop drafting below that cumulative draft
           probability (decode/tree.py); lookup nodes use their estimated acceptance probability.
    lookup: the prompt-lookup proposer of the lookup and hybrid drafters (decode/lookup.py, decode/hybrid.py).
    max_tree_tokens: cap on drafted nodes per round after merging sources (lookup and hybrid drafters; model
           drafters are capped by num_draft_tokens; None = no cap), keeping the most confident ones:
           verification cost grows with the tree, so the sources share one budget.
    """

    mode: Literal["chain", "tree"] = "tree"
    depth: int = Field(6, ge=1, le=64)
    topk: int = Field(8, ge=1, le=64)
    num_draft_tokens: int = Field(32, ge=1, le=512)
    min_draft_prob: float = Field(0.0, ge=0.0, le=1.0)  # confidence cut-off: drop nodes below this cumulative prob
    lookup: LookupConfig = LookupConfig()
    max_tree_tokens: int | None = Field(None, ge=1, le=512)
    max_new_tokens: int = Field(128, ge=1)
    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    seed: int | None = None
    stop_on_eos: bool = True

    @model_validator(mode="after")
    def _chain_is_top1(self) -> DecodeConfig:
        if self.mode == "chain" and (self.topk != 1 or self.num_draft_tokens != self.depth):
            # keep the two knobs consistent instead of silently ignoring them
            object.__setattr__(self, "topk", 1)
            object.__setattr__(self, "num_draft_tokens", self.depth)
        return self

    @property
    def greedy(self) -> bool:
        return self.temperature == 0.0
