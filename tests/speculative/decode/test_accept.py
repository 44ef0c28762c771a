import math

import torch
from scipy.stats import chisquare

from speculative.decode.accept import accept_greedy, accept_sampling, target_probs
from speculative.decode.tree import DraftTree


def _tree():
    # root(0) -> {1: tok 2, 2: tok 0}; node 1 -> {3: tok 1, 4: tok 3}; node 2 -> {5: tok 2}
    return DraftTree(torch.tensor([9, 2, 0, 1, 3, 2]), [-1, 0, 0, 1, 1, 2], torch.tensor([0, 1, 1, 2, 2, 2]))


def test_greedy_follows_argmax_and_returns_bonus():
    tree = _tree()
    logits = torch.full((6, 5), -5.0)
    logits[0, 2] = 1  # root wants 2 -> node 1
    logits[1, 3] = 1  # node 1 wants 3 -> node 4
    logits[4, 4] = 1  # node 4 is a leaf: bonus 4
    assert accept_greedy(tree, logits) == ([0, 1, 4], 4)
    logits[0] = -5.0
    logits[0, 4] = 1  # root wants a token no child has
    assert accept_greedy(tree, logits) == ([0], 4)


def chi2_pvalue(counts: torch.Tensor, probs: torch.Tensor) -> float:
    """Pearson chi-square goodness-of-fit p-value of observed counts against probabilities."""
    n = float(counts.sum())
    keep = probs * n >= 5  # pool rare cells so the chi-square approximation holds
    exp = torch.cat([probs[keep] * n, (probs[~keep].sum() * n)[None]]).double()
    obs = torch.cat([counts[keep], counts[~keep].sum()[None]]).double()
    exp, obs = exp[exp > 0], obs[exp > 0]
    exp = exp * obs.sum() / exp.sum()
    return float(chisquare(obs.numpy(), exp.numpy()).pvalue)


def test_tree_sampling_preserves_the_target_distribution():
    """The first two emitted tokens (accepted drafts, then the bonus) must follow p(x1) p(x2 | x1) exactly."""
    g = torch.Generator().manual_seed(0)
    tree = _tree()
    vocab, temp = 5, 0.8
    logits = torch.randn(6, vocab, generator=g) * 1.5
    # ground truth: the token after node i is drawn from p_i; the joint of the first two tokens
    p = target_probs(logits, temp)
    child_of = {(0, 2): 1, (0, 0): 2, (1, 1): 3, (1, 3): 4, (2, 2): 5}
    joint = torch.zeros(vocab, vocab)
    for x1 in range(vocab):
        node = child_of.get((0, x1))
        if node is None:  # x1 was rejected/resampled at the root: x2 is not drafted, it comes next round
            continue
        joint[x1] = p[0, x1] * p[node]
    n = 20000
    counts = torch.zeros(vocab, vocab)
    first = torch.zeros(vocab)
    for _ in range(n):
        path, bonus = accept_sampling(tree, logits, temp, generator=g)
        emitted = [int(tree.tokens[i]) for i in path[1:]] + [bonus]
        first[emitted[0]] += 1
        if len(emitted) >= 2:
            counts[emitted[0], emitted[1]] += 1
    assert chi2_pvalue(first, p[0]) > 1e-3
    # conditional on x1 being a drafted child, x2 must follow p(. | x1)
    for x1 in (2, 0):
        row = counts[x1]
        assert abs(row.sum() / n - float(p[0, x1])) < 4 * math.sqrt(float(p[0, x1]) / n) + 1e-3
        assert chi2_pvalue(row, p[child_of[(0, x1)]]) > 1e-3


def test_sampling_statistic_detects_a_wrong_rule():
    """Guard against a test that cannot fail: always accepting the first child skews the distribution."""
    g = torch.Generator().manual_seed(1)
    logits = torch.randn(6, 5, generator=g)
    p = target_probs(logits, 1.0)
    wrong = torch.zeros(5)
    wrong[2] = 5000  # "accept the first drafted child always"
    assert chi2_pvalue(wrong, p[0]) < 1e-6
    # and a rule that accepts drafted children with probability p/q for a *uniform* q (the wrong proposal)
    g2 = torch.Generator().manual_seed(2)
    tree = _tree()
    counts = torch.zeros(5)
    for _ in range(5000):
        x = int(tree.tokens[1]) if float(torch.rand((), generator=g2)) < min(1.0, float(p[0, 2]) * 5) else \
            int(torch.multinomial(p[0], 1, generator=g2))
        counts[x] += 1
    assert chi2_pvalue(counts, p[0]) < 1e-3


def test_top_p_keeps_the_nucleus():
    probs = target_probs(torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05]])), 1.0, top_p=0.7)
    torch.testing.assert_close(probs, torch.tensor([[0.625, 0.375, 0.0, 0.0]]))
