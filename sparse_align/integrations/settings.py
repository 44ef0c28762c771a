"""Per-request SIA settings for the engine integrations, parsed from flat `sia_*` keys.

vLLM passes them as `SamplingParams(extra_args={...})` (or `vllm_xargs` over HTTP); flat keys
because vllm_xargs only carries scalars. No `sia_*` key = steering off for that request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from sparse_align.config import SteerConfig

PREFIX = "sia_"
KEYS = {"mode", "top_k", "detector", "tau", "weight", "random_rate", "target_rate", "rate_warmup", "seed"}


class SIASettingsError(ValueError):
    """Invalid per-request SIA settings (vLLM turns a ValueError into HTTP 400)."""


def parse_request_settings(extra: Mapping[str, Any] | None, *, greedy: bool = False,
                           max_new_tokens: int = 1) -> SteerConfig | None:
    if not extra:
        return None
    mine = {k[len(PREFIX):]: v for k, v in extra.items() if isinstance(k, str) and k.startswith(PREFIX)}
    if not mine:
        return None
    unknown = sorted(set(mine) - KEYS)
    if unknown:
        raise SIASettingsError(f"unknown SIA setting(s) {[PREFIX + k for k in unknown]}; "
                               f"allowed: {sorted(PREFIX + k for k in KEYS)}")
    try:  # strict: "5" is not a number and true is not 1; finite floats only (StrictModel)
        return SteerConfig.model_validate({**mine, "greedy": greedy, "max_new_tokens": max_new_tokens}, strict=True)
    except ValidationError as err:
        msgs = "; ".join(f"{PREFIX}{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in err.errors())
        raise SIASettingsError(f"invalid SIA settings: {msgs}") from None


def check_sampling_compatible(temperature: float, top_p: float, top_k: int | None, penalties: Mapping[str, float]):
    """Steering assumes temperature 1 (or greedy) and nothing applied after it: penalties, top-k/top-p
    applied after the processor would reshape the steered distribution and destroy the signal."""
    if temperature not in (0.0, 1.0):
        raise SIASettingsError(f"SIA steering needs temperature 1.0 (or 0 for greedy), got {temperature}")
    if top_p < 1.0 or (top_k not in (None, 0, -1)):
        raise SIASettingsError("SIA steering needs top_p=1 and top_k off (the processor already restricts to top-K)")
    active = {k: v for k, v in penalties.items() if v != (1.0 if k == "repetition_penalty" else 0.0)}
    if active:
        raise SIASettingsError(f"SIA steering cannot be combined with penalties {active}: they are applied "
                               "after the logits processor and would undo the steering")
