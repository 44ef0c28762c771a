"""Shared sampling noise: paired samples across methods.

Temperature-1 sampling is argmax(z + g) with g i.i.d. Gumbel (the Gumbel-max trick). If the noise of
response position t depends only on (prompt, seed, t), every method sees the same g at the same
position: two identical methods give identical samples, base and w = 0 truncation agree wherever the
base sample lies in the top-K, and differences between methods are paired rather than independent
(what the powered evaluation needs to resolve small effects). Noise over the full vocabulary is drawn
per position, so the sample is an exact draw from softmax(z) whatever z is.
"""

from __future__ import annotations

import hashlib

import torch


def noise_seed(*key: int) -> int:
    """A 63-bit seed from integers, stable across processes and Python versions (no hash())."""
    digest = hashlib.blake2b(",".join(str(int(k)) for k in key).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def gumbel(size: int, seed: int) -> torch.Tensor:
    u = torch.rand(size, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))


class SharedNoise:
    """The Gumbel stream of one (prompt, seed): the t-th call to `gumbel_choice` uses position t's noise."""

    def __init__(self, *key: int):
        self.key = tuple(int(k) for k in key)
        self.position = 0

    def gumbel_choice(self, logits: torch.Tensor) -> int:
        g = gumbel(logits.shape[-1], noise_seed(*self.key, self.position)).to(logits.device)
        self.position += 1
        return int(torch.argmax(logits.double() + g))
