"""Value scores for K candidates when the value model cannot share the engine's KV cache.

Used by the HF `generate` logits processor and the vLLM processor: each sequence keeps its own
value-model cache, synced lazily (only the tokens generated since the last steered step are fed,
in one forward), then the K candidates are scored with one branched forward.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from sparse_align.steer.cached_lm import CachedLM
from sparse_align.value.model import ValueModel


class SequenceValueScorer:
    def __init__(self, value_model: ValueModel):
        self.value_model = value_model
        self.lm = CachedLM(value_model.backbone)
        self.fed: list[int] = []

    @torch.inference_mode()
    def score(self, token_ids: Sequence[int], candidates: torch.Tensor) -> torch.Tensor:
        """V(token_ids + c) for each candidate c ([K] float tensor on the candidates' device)."""
        token_ids = list(token_ids)
        if token_ids[: len(self.fed)] != self.fed:  # the sequence was rewritten (preemption): start over
            self.lm, self.fed = CachedLM(self.value_model.backbone), []
        new = token_ids[len(self.fed):]
        if new:
            self.lm.append(new)
            self.fed.extend(new)
        if not self.fed:
            raise ValueError("cannot score candidates without a prefix (empty prompt)")
        _, hidden = self.lm.branch(candidates.to(self.lm.device), with_logits=False)
        self.lm.drop_branch()
        return self.value_model.head(hidden).float().to(candidates.device)
