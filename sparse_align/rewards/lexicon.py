"""Second lexicon scorers beside VADER, from wheels that ship their lexicons (no download at run time):
AFINN (word valences -5..5; here the sum squashed to [-1, 1] as VADER's compound is) and TextBlob's
pattern polarity in [-1, 1]. Install with `make sparse_align-deps` (pip install afinn textblob)."""

from __future__ import annotations

import math
from collections.abc import Sequence

from sparse_align.rewards.base import RewardModel


def _missing(pkg: str) -> ImportError:
    return ImportError(f"the '{pkg}' scorer needs `pip install {pkg}` (make sparse_align-deps)")


class AfinnReward(RewardModel):
    name = "afinn"

    def __init__(self, alpha: float = 15.0) -> None:
        try:
            from afinn import Afinn
        except ImportError as err:
            raise _missing("afinn") from err
        self._afinn, self.alpha = Afinn(), alpha

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        self._check(prompts, responses)
        # VADER's normalisation x / sqrt(x^2 + alpha): bounded, and comparable across response lengths
        return [s / math.sqrt(s * s + self.alpha) for s in (float(self._afinn.score(r)) for r in responses)]


class TextBlobReward(RewardModel):
    name = "textblob"

    def __init__(self) -> None:
        try:
            from textblob.en.sentiments import PatternAnalyzer
        except ImportError as err:
            raise _missing("textblob") from err
        self._analyzer = PatternAnalyzer()

    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        self._check(prompts, responses)
        return [float(self._analyzer.analyze(r).polarity) for r in responses]
