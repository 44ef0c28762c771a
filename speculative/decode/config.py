"""Typed settings of the speculative decoding engine (one object, passed explicitly)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import StrictModel


class DecodeConfig(StrictModel):
    """How drafts are built and verified.

    chain: top-1 drafting to `depth` tokens (num_draft_tokens is forced to depth).
    tree:  EAGLE-2 dynamic tree: expand the `topk` best nodes per depth, keep the `num_draft_tokens` best
           nodes overall by cumulative draft log-prob, verify them with one target forward.
    min_draft_prob > 0 (either mode): dynamic draft length, stop drafting below that cumulative draft
           probability (decode/tree.py).
    """

    mode: Literal["chain", "tree"] = "tree"
    depth: int = Field(6, ge=1, le=64)
    topk: int = Field(8, ge=1, le=64)
    num_draft_tokens: int = Field(32, ge=1, le=512)
    min_draft_prob: float = Field(0.0, ge=0.0, le=1.0)  # confidence cut-off: drop nodes below this cumulative prob
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
