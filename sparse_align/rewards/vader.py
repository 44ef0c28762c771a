"""Lexicon sentiment (VADER compound score in [-1, 1]): fast, offline, deterministic."""

from __future__ import annotations

from collections.abc import Sequence

from sparse_align.rewards.base import RewardModel


class VaderReward(RewardModel):
    name = "vader"

    def __init__(self) -> None:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

        self._analyzer = SentimentIntensityAnalyzer()

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        self._check(prompts, responses)  # the prompt is ignored: only the response's sentiment counts
        return [float(self._analyzer.polarity_scores(r)["compound"]) for r in responses]
