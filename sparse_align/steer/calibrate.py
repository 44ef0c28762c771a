"""Rate targeting: pick tau so that a target fraction of tokens has junction entropy >= tau.

Calibrated globally from base-sampling entropies (the gate only reads the entropy, which is the
base model's, so steering does not change the calibration data distribution at the first tokens;
later tokens drift, which is why the evaluation reports the realised steered fraction).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def tau_for_rate(entropies: Sequence[float], rate: float) -> float:
    """The (1 - rate) quantile of `entropies`: steering when H >= tau hits `rate` on that sample."""
    if not entropies:
        raise ValueError("tau calibration needs at least one entropy value")
    if not 0.0 < rate <= 1.0:
        raise ValueError(f"target rate must be in (0, 1], got {rate}")
    if rate >= 1.0:
        return 0.0
    values = torch.tensor(list(entropies), dtype=torch.float64)
    return float(torch.quantile(values, 1.0 - rate, interpolation="higher"))


def realised_rate(entropies: Sequence[float], tau: float) -> float:
    return sum(1 for h in entropies if h >= tau) / max(len(entropies), 1)
