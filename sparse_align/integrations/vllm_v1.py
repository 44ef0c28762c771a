"""vLLM V1 batch-level logits processor for SIA.

    LLM(model=..., logits_processors=[SIAVLLMLogitsProcessor],
        additional_config={"sia_value_model": "/path/to/value_model"})
    SamplingParams(temperature=1.0, extra_args={"sia_mode": "sia", "sia_tau": 1.2, "sia_weight": 5})
    # server: vllm serve ... --logits-processors sparse_align.integrations.vllm_v1:SIAVLLMLogitsProcessor
    #         --additional-config '{"sia_value_model": "..."}'; requests carry "vllm_xargs": {"sia_mode": ...}

The value model cannot share vLLM's paged KV cache, so it runs as a separate HF model on the same
device with its own per-request cache (synced lazily, K candidates in one branched forward).
vLLM refuses custom logits processors together with speculative decoding, so SIA requests cannot
use a draft model. Requests without `sia_*` keys pass through untouched.

Failure containment: settings are validated at admission (`validate_params`: a bad request gets HTTP 400
/ VLLMValidationError, nothing reaches the engine); the value model is loaded when the engine starts, so
a missing or broken one stops startup with its path named instead of failing requests later; anything
that still goes wrong for one request inside the engine (update_state / apply) is logged, counted in
`stats["errors"]` and that request continues unsteered: an exception escaping a logits processor would
stop the engine for every request.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import torch
from vllm import SamplingParams
from vllm.v1.sample.logits_processor import BatchUpdate, LogitsProcessor, MoveDirectionality

from sparse_align.config import SteerConfig
from sparse_align.integrations.settings import check_sampling_compatible, parse_request_settings
from sparse_align.steer.gate import SteerGate
from sparse_align.steer.junction import junction, steered_logits
from sparse_align.steer.scorer import SequenceValueScorer
from sparse_align.value.model import ValueModel

log = logging.getLogger("llmsys.sparse_align.vllm")
CONFIG_KEY = "sia_value_model"
ENV_VAR = "SIA_VALUE_MODEL"


def _settings(params: SamplingParams) -> SteerConfig | None:
    cfg = parse_request_settings(params.extra_args, greedy=params.temperature == 0.0,
                                 max_new_tokens=params.max_tokens or 1)
    if cfg is not None:
        check_sampling_compatible(params.temperature, params.top_p, params.top_k,
                                  {"repetition_penalty": params.repetition_penalty,
                                   "presence_penalty": params.presence_penalty,
                                   "frequency_penalty": params.frequency_penalty})
    return cfg


@dataclass
class _Request:
    cfg: SteerConfig
    prompt_ids: list[int]
    output_ids: list[int]  # vLLM's live list: always holds the tokens generated so far
    gate: SteerGate
    scorer: SequenceValueScorer


class SIAVLLMLogitsProcessor(LogitsProcessor):
    # in-process counters (tests and benchmarks read them; each engine process has its own)
    stats: dict[str, int] = {"steps": 0, "steered": 0, "errors": 0}

    @classmethod
    def validate_params(cls, sampling_params: SamplingParams) -> None:
        _settings(sampling_params)  # raises SIASettingsError (a ValueError -> HTTP 400 on the server)

    def __init__(self, vllm_config: Any, device: torch.device, is_pin_memory: bool):
        extra = getattr(vllm_config, "additional_config", None) or {}
        self.value_model_path = (extra.get(CONFIG_KEY) if isinstance(extra, dict) else None) or os.environ.get(ENV_VAR)
        self.device = device
        self._value_model = None
        self.requests: dict[int, _Request] = {}
        _ = self.value_model  # at startup: a configuration error must not surface as a failed request

    def _contain(self, index: int, err: Exception) -> None:
        """One request's failure: drop its steering, keep the engine (and every other request) running."""
        self.requests.pop(index, None)
        SIAVLLMLogitsProcessor.stats["errors"] += 1
        log.error("SIA steering failed for the request at batch index %d, continuing it unsteered: %s: %s",
                  index, type(err).__name__, err)

    def is_argmax_invariant(self) -> bool:
        return False  # steering changes which token is the argmax, so greedy requests need it too

    @property
    def value_model(self):
        if self._value_model is None:
            if not self.value_model_path:
                raise ValueError(f"SIAVLLMLogitsProcessor needs a value model: pass additional_config="
                                 f"{{'{CONFIG_KEY}': <folder>}} or set ${ENV_VAR}")
            try:
                self._value_model = ValueModel.load(self.value_model_path).to(self.device).eval()
            except Exception as err:  # noqa: BLE001 - name the folder whatever the cause
                raise ValueError(f"cannot load the SIA value model from {self.value_model_path} "
                                 f"({CONFIG_KEY} / ${ENV_VAR}): {type(err).__name__}: {err}") from err
        return self._value_model

    def update_state(self, batch_update: BatchUpdate | None) -> None:
        if batch_update is None:
            return
        for index in batch_update.removed:
            self.requests.pop(index, None)
        for index, params, prompt_ids, output_ids in batch_update.added:
            self.requests.pop(index, None)  # the slot is reused: never keep the previous request's state
            try:
                cfg = _settings(params)
                if cfg is None:
                    continue
                if prompt_ids is None:
                    raise ValueError("SIA needs the prompt token ids (embedding prompts are not supported)")
                self.requests[index] = _Request(cfg, list(prompt_ids), output_ids, SteerGate(cfg),
                                                SequenceValueScorer(self.value_model))
            except Exception as err:  # noqa: BLE001 - see _contain
                self._contain(index, err)
        for a, b, direction in batch_update.moved:
            ra, rb = self.requests.pop(a, None), self.requests.pop(b, None)
            if ra is not None:
                self.requests[b] = ra
            if direction == MoveDirectionality.SWAP and rb is not None:
                self.requests[a] = rb

    def apply(self, logits: torch.Tensor) -> torch.Tensor:
        for index, req in list(self.requests.items()):
            try:
                self._steer_row(logits, index, req)
            except Exception as err:  # noqa: BLE001 - see _contain; the row keeps its unsteered logits
                self._contain(index, err)
        return logits

    def _steer_row(self, logits: torch.Tensor, index: int, req: _Request) -> None:
        row = logits[index]
        # the gate thresholds the request's detector score (`sia_detector`), as in steer/decode.py
        top_logits, top_ids, entropy = junction(row, req.cfg.top_k, req.cfg.detector)
        SIAVLLMLogitsProcessor.stats["steps"] += 1
        if not req.gate(float(entropy)):
            return
        values = req.scorer.score(req.prompt_ids + list(req.output_ids), top_ids)
        if not bool(torch.isfinite(values).all()):  # nan/inf values would leave the row with no valid token
            raise FloatingPointError("the value model returned non-finite values")
        logits[index] = steered_logits(row, top_logits, top_ids, values, req.cfg.weight).to(logits.dtype)
        SIAVLLMLogitsProcessor.stats["steered"] += 1
