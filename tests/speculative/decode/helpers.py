"""Shared builders for the decode tests: tiny targets, partially-agreeing drafters, naive greedy."""

from __future__ import annotations

import copy

import torch

from tests.conftest import make_tiny_llama


def tiny_target(vocab: int = 256, layers: int = 6, seed: int = 0):
    # a larger init spread makes logits peaked, so argmax is far from float-rounding ties
    return make_tiny_llama(vocab_size=vocab, layers=layers, seed=seed, initializer_range=0.2)


def noisy_copy(model, noise: float, seed: int = 1):
    """The target with Gaussian noise on every weight: a draft that agrees often, but not always."""
    torch.manual_seed(seed)
    out = copy.deepcopy(model)
    with torch.no_grad():
        for p in out.parameters():
            p.add_(torch.randn_like(p) * noise * p.std().clamp_min(1e-3))
    return out.eval()


@torch.no_grad()
def naive_greedy(model, prompt: torch.Tensor, n: int) -> list[int]:
    """Reference: full recomputation, no cache, argmax each step."""
    ids = prompt.clone()
    out = []
    for _ in range(n):
        tok = int(model(ids[None]).logits[0, -1].argmax())
        out.append(tok)
        ids = torch.cat([ids, torch.tensor([tok])])
    return out
