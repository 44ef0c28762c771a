"""When to steer: base (never), dense (always), sia (entropy >= tau), random (Bernoulli at a rate).

Per-prompt rate targeting (`sia` with `target_rate`): one gate per sequence keeps that sequence's
junction entropies; after `rate_warmup` tokens (which use the global `tau` as a prior) it steers when
the current entropy is in the top `target_rate` of the entropies seen so far in THIS prompt, i.e.
tau_t is the running (1 - rate) quantile, corrected by the steering budget: when the prompt is behind
its target count the quantile level loosens, when ahead it tightens. So a prompt whose entropies are
all low (where a global tau would never steer) and one whose entropies are all high both land near
the target, and within a prompt the steered tokens are still its most uncertain ones.
"""

from __future__ import annotations

import random

from sparse_align.config import SteerConfig
from sparse_align.steer.calibrate import tau_for_rate


class SteerGate:
    def __init__(self, cfg: SteerConfig, seed: int | None = None):
        self.cfg = cfg
        # a private RNG: random-sparse gating must not perturb the token-sampling stream
        self._rng = random.Random(cfg.seed if seed is None else seed)
        self.history: list[float] = []  # this sequence's junction entropies (per-prompt rate targeting)
        self.steered = 0
        self.tau = cfg.tau  # the threshold used at the last step

    def __call__(self, entropy: float) -> bool:
        mode = self.cfg.mode
        if mode == "base":
            return False
        if mode == "dense":
            return True
        if mode == "sia":
            steer = self._per_prompt(entropy) if self.cfg.target_rate is not None else entropy >= self.cfg.tau
            self.steered += steer
            return steer
        return self._rng.random() < self.cfg.random_rate

    def _per_prompt(self, entropy: float) -> bool:
        self.history.append(entropy)
        t, rate = len(self.history), self.cfg.target_rate
        if t <= self.cfg.rate_warmup:
            self.tau = self.cfg.tau
        else:
            # budget correction: the rate still needed to reach rate * t by this token, kept in (0, 1]
            need = min(max(rate * t - self.steered, 1e-6), 1.0)
            level = min(max(0.5 * (rate + need), 1e-6), 1.0)
            self.tau = tau_for_rate(self.history, level)
        return entropy >= self.tau
