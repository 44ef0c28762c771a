"""Teacher rewards: `score(prompts, responses) -> list[float]`, pluggable by name."""

from __future__ import annotations

from typing import Any

from sparse_align.rewards.base import RewardModel
from sparse_align.rewards.hf_rm import HFRewardModel
from sparse_align.rewards.lexicon import AfinnReward, TextBlobReward
from sparse_align.rewards.llm_judge import LLMJudgeReward
from sparse_align.rewards.vader import VaderReward


def make_reward(name: str, **kw: Any) -> RewardModel:
    """`vader` | `afinn` | `textblob` (lexicons) | `judge` (LLM P(yes) through runtime.llm) |
    `hf-rm:<folder>` (sequence-classification RM)."""
    if name == "vader":
        return VaderReward()
    if name in ("afinn", "textblob"):
        return AfinnReward() if name == "afinn" else TextBlobReward()
    if name == "judge":
        return LLMJudgeReward(**kw)
    if name.startswith("hf-rm:"):
        return HFRewardModel(name.split(":", 1)[1], **kw)
    raise ValueError(f"unknown reward '{name}'; use vader | afinn | textblob | judge | hf-rm:<folder>")


__all__ = ["RewardModel", "make_reward"]
