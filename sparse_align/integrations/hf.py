"""transformers integration: a LogitsProcessor for `model.generate`.

`generate` owns its KV cache, so the value model keeps its own per-row cache here (see
SequenceValueScorer); the faster shared-cache path is `sparse_align.steer.decode.generate_steered`.
Call generate with do_sample=True, temperature=1.0, top_k=0, top_p=1.0 (or do_sample=False) and no
repetition penalty: anything applied after this processor would reshape the steered distribution.
One processor may serve several generate calls: per-row gates and value caches are reset whenever
input_ids is not the previous call's input_ids plus one token (a new generation), so no rate history,
random stream or cached prefix carries over from one call to the next.
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from sparse_align.config import SteerConfig
from sparse_align.steer.gate import SteerGate
from sparse_align.steer.junction import junction, steered_logits
from sparse_align.steer.scorer import SequenceValueScorer
from sparse_align.value.model import ValueModel


class SIALogitsProcessor(LogitsProcessor):
    def __init__(self, value_model: ValueModel, cfg: SteerConfig, *, pad_token_id: int | None = None):
        self.value_model = value_model
        self.cfg = cfg
        self.pad_token_id = pad_token_id
        self._rows: dict[int, tuple[SequenceValueScorer, SteerGate]] = {}
        self._last: torch.Tensor | None = None  # input_ids of the previous step
        self.steps = 0
        self.steered = 0

    def reset(self) -> None:
        """Forget every row's gate and value cache (done automatically when a new generation starts)."""
        self._rows.clear()
        self._last = None

    def _continues(self, input_ids: torch.Tensor) -> bool:
        """True when this step extends the previous one by one token in every row (same generate call)."""
        last = self._last
        return (last is not None and input_ids.shape[0] == last.shape[0] and input_ids.shape[1] == last.shape[1] + 1
                and torch.equal(input_ids[:, :-1], last))

    def _row(self, b: int) -> tuple[SequenceValueScorer, SteerGate]:
        if b not in self._rows:
            self._rows[b] = (SequenceValueScorer(self.value_model), SteerGate(self.cfg, seed=self.cfg.seed + b))
        return self._rows[b]

    def _tokens(self, row: torch.Tensor) -> list[int]:
        ids = row.tolist()
        if self.pad_token_id is not None:  # generate left-pads batched prompts; the value model must not see pads
            start = next((i for i, t in enumerate(ids) if t != self.pad_token_id), len(ids))
            ids = ids[start:]
        return ids

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if not self._continues(input_ids):
            self._rows.clear()
        self._last = input_ids.detach().clone()
        out = scores.clone()
        for b in range(scores.shape[0]):
            # the gate thresholds the configured detector's junction score, as in steer/decode.py
            top_logits, top_ids, entropy = junction(scores[b], self.cfg.top_k, self.cfg.detector)
            scorer, gate = self._row(b)
            self.steps += 1
            if not gate(float(entropy)):
                continue
            values = scorer.score(self._tokens(input_ids[b]), top_ids)
            out[b] = steered_logits(scores[b], top_logits, top_ids, values, self.cfg.weight).to(out.dtype)
            self.steered += 1
        return out
