"""Powered-evaluation statistics against hand-computed values and brute force."""

from itertools import combinations

import numpy as np
import pytest

from sparse_align.eval.stats import (
    best_of_n_expected,
    equivalence,
    holm,
    holm_comparisons,
    mean_ci,
    paired,
    prompt_means,
)


def test_holm_hand_computed():
    # sorted 0.01, 0.03, 0.04 -> x3, x2, x1 = 0.03, 0.06, 0.04 -> running max 0.03, 0.06, 0.06
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.6]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([0.02]) == [0.02]


def test_bootstrap_two_prompts_hand_computed():
    # differences [0, 1]: resampled means are 0, 0.5, 1 with probability 1/4, 1/2, 1/4
    res = paired(np.array([0.0, 1.0]), np.array([0.0, 0.0]), n_boot=40_000, seed=1)
    assert res["diff"] == 0.5
    assert res["p_one_sided"] == pytest.approx(0.25, abs=0.01)  # P(boot mean <= 0)
    assert res["lo"] == 0.0 and res["hi"] == 1.0


def test_bootstrap_ci_constant_and_normal():
    c = mean_ci(np.full(30, 0.3), n_boot=500)
    assert c == {"mean": pytest.approx(0.3), "lo": pytest.approx(0.3), "hi": pytest.approx(0.3)}
    x = np.random.default_rng(0).normal(0.0, 1.0, 400)
    ci = mean_ci(x, n_boot=20_000)
    half = 1.96 * x.std(ddof=1) / np.sqrt(len(x))
    assert ci["hi"] - ci["lo"] == pytest.approx(2 * half, rel=0.08)


def test_holm_comparisons_step_down():
    big = np.linspace(0.2, 0.4, 50)  # a clear positive difference: tiny p
    noise = np.random.default_rng(0).normal(0.0, 0.3, 50)  # no effect
    tests = {"a": paired(big, np.zeros(50), 2000), "b": paired(noise, np.zeros(50), 2000)}
    out = holm_comparisons(tests, alpha=0.05)
    assert out["a"]["significant"] and out["a"]["holm_level"] == 0.025 and out["a"]["holm_lower"] > 0
    assert not out["b"]["significant"] and out["b"]["holm_level"] == 0.05
    assert "_boot" not in out["a"]


def test_equivalence():
    a = np.random.default_rng(1).normal(0.5, 0.1, 200)
    assert equivalence(a, a - 0.01, margin=0.05)["equivalent"]
    assert not equivalence(a, a - 0.2, margin=0.05)["equivalent"]
    assert not equivalence(a, np.random.default_rng(2).normal(0.5, 1.0, 200), margin=0.05)["equivalent"]  # too wide


def test_best_of_n_matches_enumeration():
    rng = np.random.default_rng(3)
    rewards = rng.normal(size=7).tolist()
    ranks = rng.integers(0, 3, size=7).astype(float).tolist()  # ties in the ranker
    for n in (1, 2, 4, 7):
        subsets = list(combinations(range(7), n))
        brute = np.mean([rewards[max(s, key=lambda i: (ranks[i], i))] for s in subsets])
        assert best_of_n_expected(rewards, ranks, n) == pytest.approx(brute)
    assert best_of_n_expected(rewards, rewards, 7) == pytest.approx(max(rewards))
    with pytest.raises(ValueError):
        best_of_n_expected(rewards, ranks, 8)


def test_prompt_means():
    assert prompt_means([[1.0, 3.0], [2.0]]).tolist() == [2.0, 2.0]
