"""Ranking losses and pairwise accuracy against naive per-pair loops."""

import math

import pytest
import torch

from sparse_align.value.losses import banded_accuracy, listwise_loss, pairwise_correct, pairwise_loss


def _data(seed=0, n=5, k=4):
    g = torch.Generator().manual_seed(seed)
    values = torch.randn(n, k, generator=g)
    targets = torch.randint(0, 3, (n, k), generator=g).float()  # ties on purpose
    return values, targets


def test_listwise_matches_naive():
    v, t = _data()
    temp = 0.5
    naive = 0.0
    for row_v, row_t in zip(v.tolist(), t.tolist()):
        zt = sum(math.exp(x / temp) for x in row_t)
        zv = sum(math.exp(x) for x in row_v)
        naive += -sum(math.exp(a / temp) / zt * math.log(math.exp(b) / zv) for a, b in zip(row_t, row_v))
    assert float(listwise_loss(v, t, temp)) == pytest.approx(naive / len(v), rel=1e-5)
    # shift invariance per position (the steering rule centres V)
    assert float(listwise_loss(v + 3.0, t - 1.0, temp)) == pytest.approx(naive / len(v), rel=1e-5)


def test_pairwise_matches_naive_and_skips_ties():
    v, t = _data(1)
    terms = [-math.log(1 / (1 + math.exp(-(v[n, i] - v[n, j]))))
             for n in range(len(v)) for i in range(v.shape[1]) for j in range(v.shape[1]) if t[n, i] > t[n, j]]
    assert float(pairwise_loss(v, t)) == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    flat = torch.zeros(2, 3)
    out = pairwise_loss(torch.randn(2, 3, requires_grad=True), flat)
    assert float(out.detach()) == 0.0 and out.requires_grad  # no pair: zero loss, still differentiable


def test_pairwise_correct_matches_naive():
    v, t = _data(2)
    v[0, 1] = v[0, 0]  # a tie in V counts half
    right, total = pairwise_correct(v, t)
    for n in range(len(v)):
        r = tot = 0.0
        for i in range(v.shape[1]):
            for j in range(v.shape[1]):
                if t[n, i] > t[n, j]:
                    tot += 1
                    r += 1.0 if v[n, i] > v[n, j] else 0.5 if v[n, i] == v[n, j] else 0.0
        assert float(right[n]) == r and float(total[n]) == tot


def test_banded_accuracy():
    t = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 1.0]])
    v = torch.tensor([[0.0, 1.0], [1.0, 0.0], [0.0, 2.0]])  # right, wrong, right
    bands = banded_accuracy(v, t, torch.tensor([0.2, 0.7, 1.2]), [0.5, 1.0])
    assert bands["[-inf,0.5)"]["acc"] == 1.0 and bands["[0.5,1)"]["acc"] == 0.0 and bands["[1,inf)"]["acc"] == 1.0
    assert bands["all"]["acc"] == pytest.approx(2 / 3) and bands["all"]["pairs"] == 3
