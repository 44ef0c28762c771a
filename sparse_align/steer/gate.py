"""When to steer: base (never), dense (always), sia (entropy >= tau), random (Bernoulli at a rate)."""

from __future__ import annotations

import random

from sparse_align.config import SteerConfig


class SteerGate:
    def __init__(self, cfg: SteerConfig, seed: int | None = None):
        self.cfg = cfg
        # a private RNG: random-sparse gating must not perturb the token-sampling stream
        self._rng = random.Random(cfg.seed if seed is None else seed)

    def __call__(self, entropy: float) -> bool:
        mode = self.cfg.mode
        if mode == "base":
            return False
        if mode == "dense":
            return True
        if mode == "sia":
            return entropy >= self.cfg.tau
        return self._rng.random() < self.cfg.random_rate
