from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence


class RewardModel(ABC):
    """Scores a full (prompt, response) pair; higher is better."""

    name: str = "reward"

    @abstractmethod
    def score(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        ...

    @staticmethod
    def _check(prompts: Sequence[str], responses: Sequence[str]) -> None:
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
