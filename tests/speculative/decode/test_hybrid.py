"""Hybrid (model + prompt lookup in one tree) and lookup-only decoding: greedy-exact on tiny random Llamas,
acceptance counted per source, and the target's distribution kept under sampling with merged trees."""

import pytest
import torch

from speculative.decode import DecodeConfig, HybridDrafter, LMDrafter, LookupDrafter, SpeculativeEngine, TargetRunner
from speculative.decode.accept import accept_sampling, target_probs
from speculative.decode.config import LookupConfig
from speculative.decode.eagle3_drafter import Eagle3Drafter
from speculative.decode.tree import LOOKUP, MODEL, build_tree, merge_chain

from .helpers import naive_greedy, noisy_copy, tiny_target
from .test_accept import chi2_pvalue
from .test_engine import random_eagle3

NEW = 24
LOOK = LookupConfig(min_n=1, max_n=3, k=5)
CONFIGS = {
    "chain": DecodeConfig(mode="chain", depth=3, max_new_tokens=NEW, lookup=LOOK),
    "tree": DecodeConfig(mode="tree", depth=3, topk=3, num_draft_tokens=8, max_new_tokens=NEW, lookup=LOOK),
    # dynamic depth: a shared budget and a confidence cut-off drop nodes of both sources
    "tree-budget-cut": DecodeConfig(mode="tree", depth=4, topk=3, num_draft_tokens=10, max_new_tokens=NEW,
                                    lookup=LOOK, max_tree_tokens=6, min_draft_prob=0.05),
}


@pytest.fixture(scope="module")
def target():
    return tiny_target()


def prompts(n: int = 16, seed: int = 0) -> list[torch.Tensor]:
    """Random prompts, half of them repetitive (a segment repeated), where prompt lookup finds matches."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n):
        seg = torch.randint(0, 256, (int(torch.randint(2, 9, (), generator=g)),), generator=g)
        out.append(seg.repeat(3) if i % 2 else torch.randint(0, 256, (int(torch.randint(1, 20, (), generator=g)),),
                                                               generator=g))
    return out


_REFERENCE: dict[tuple[int, tuple[int, ...]], list[int]] = {}


def reference(target, prompt: torch.Tensor) -> list[int]:
    """naive_greedy, computed once per (target, prompt): several configs decode the same prompts."""
    key = (id(target), tuple(prompt.tolist()))
    if key not in _REFERENCE:
        _REFERENCE[key] = naive_greedy(target, prompt, NEW)
    return _REFERENCE[key]


def check_exact(engine, target, cases) -> dict[str, int]:
    accepted = dict.fromkeys(("model", "lookup", "both"), 0)
    for i, prompt in enumerate(cases):
        res = engine.generate(prompt)
        assert res.token_ids == reference(target, prompt), f"prompt {i} diverged"
        assert sum(res.stats.accepted_by_source.values()) == sum(res.stats.accepted)
        for k, v in res.stats.accepted_by_source.items():
            accepted[k] += v
    return accepted


@pytest.mark.parametrize("mode", list(CONFIGS))
def test_hybrid_greedy_is_exact_and_both_sources_get_accepted(target, mode):
    drafter = HybridDrafter(LMDrafter(noisy_copy(target, noise=0.4)), LookupDrafter(LOOK))
    engine = SpeculativeEngine(TargetRunner(target), drafter, CONFIGS[mode])
    accepted = check_exact(engine, target, prompts())
    # random Llamas fall into loops, so lookup copies get accepted; the noisy draft is right at times
    assert accepted["lookup"] > 0 and accepted["model"] + accepted["both"] > 0, accepted


def test_hybrid_respects_the_tree_budget(target):
    cfg = CONFIGS["tree-budget-cut"]
    drafter = HybridDrafter(LMDrafter(noisy_copy(target, noise=0.4)), LookupDrafter(LOOK))
    sizes = []
    original = drafter.draft_tree

    def spy(*a, **kw):
        tree = original(*a, **kw)
        sizes.append(tree.size)
        return tree

    drafter.draft_tree = spy
    SpeculativeEngine(TargetRunner(target), drafter, cfg).generate(prompts()[1])
    assert max(sizes) <= cfg.max_tree_tokens + 1 and min(sizes) < max(sizes)  # depth follows confidence


@pytest.mark.parametrize("mode", ["chain", "tree"])
def test_hybrid_with_exported_eagle3_draft_is_exact(target, tmp_path, mode):
    draft = random_eagle3(target, tmp_path)
    drafter = HybridDrafter(Eagle3Drafter(draft), LookupDrafter(LOOK))
    engine = SpeculativeEngine(TargetRunner(target, draft.config.aux_layer_ids), drafter, CONFIGS[mode])
    accepted = check_exact(engine, target, prompts(8, seed=1))
    assert accepted["lookup"] > 0  # a random EAGLE-3 head is (almost) never right; the copies carry it


def test_lookup_alone_is_exact_and_needs_no_model(target):
    engine = SpeculativeEngine(TargetRunner(target), LookupDrafter(LOOK), CONFIGS["chain"])
    accepted = check_exact(engine, target, prompts(seed=2))
    assert accepted["lookup"] > 0 and accepted["model"] == accepted["both"] == 0


def test_merged_tree_sampling_preserves_the_target_distribution():
    """Model top-2 at the root, a lookup chain sharing one of them and adding a sibling: the first two emitted
    tokens must follow p(x1) p(x2 | x1) exactly, whichever source drafted them."""
    g = torch.Generator().manual_seed(0)
    vocab, temp = 6, 0.9
    table = torch.log_softmax(torch.randn(vocab, vocab, generator=g) * 2, -1)

    class Table:
        def expand(self, tokens, parents):
            return table[tokens]

    model_tree = build_tree(0, table[0], Table(), depth=2, topk=2, num_draft_tokens=4)
    top = int(table[0].argmax())
    other = next(t for t in range(vocab) if t not in model_tree.tokens[1:].tolist())
    tree = merge_chain(merge_chain(model_tree, [top, other], [-0.1, -0.2]), [other, top], [-0.3, -0.4])
    kids = tree.children()
    assert {tree.sources[c] for c in kids[0]} == {MODEL, MODEL | LOOKUP, LOOKUP}  # all three kinds of child
    for ks in kids:
        assert len({int(tree.tokens[c]) for c in ks}) == len(ks)
    logits = torch.randn(tree.size, vocab, generator=g) * 1.5
    p = target_probs(logits, temp)
    child = {(par, int(tree.tokens[c])): c for par, ks in enumerate(kids) for c in ks}
    n = 20000
    first, pairs = torch.zeros(vocab), torch.zeros(vocab, vocab)
    for _ in range(n):
        path, bonus = accept_sampling(tree, logits, temp, generator=g)
        emitted = [int(tree.tokens[i]) for i in path[1:]] + [bonus]
        first[emitted[0]] += 1
        if len(emitted) >= 2:
            pairs[emitted[0], emitted[1]] += 1
    assert chi2_pvalue(first, p[0]) > 1e-3
    for x1 in range(vocab):
        node = child.get((0, x1))
        if node is not None:  # drafted x1: x2 comes from the subtree (or the bonus) and must follow p(. | x1)
            assert chi2_pvalue(pairs[x1], p[node]) > 1e-3


def test_hybrid_sampling_end_to_end_keeps_the_target_distribution():
    """x2 given x1 through draft + verify with a merged tree equals the target's p(x2 | prompt, x1)."""
    from scipy.stats import chisquare

    target = tiny_target(vocab=12, layers=4)
    look = LookupConfig(min_n=1, max_n=2, k=3)
    cfg = DecodeConfig(mode="tree", depth=2, topk=2, num_draft_tokens=3, max_new_tokens=2, temperature=1.0, seed=0,
                       lookup=look)
    engine = SpeculativeEngine(TargetRunner(target), HybridDrafter(LMDrafter(noisy_copy(target, 0.1)),
                                                                   LookupDrafter(look)), cfg)
    # the target's own greedy text: random Llamas loop, so what followed a token earlier is what the target
    # is likely to sample next, and lookup copies get accepted often
    start = torch.tensor([3, 1, 4])
    prompt = torch.cat([start, torch.tensor(naive_greedy(target, start, 12))])
    with torch.no_grad():
        p1 = torch.softmax(target(prompt[None]).logits[0, -1], -1)
        x1 = int(p1.argmax())
        p2 = torch.softmax(target(torch.cat([prompt, torch.tensor([x1])])[None]).logits[0, -1], -1)
    counts, lookup_hits = torch.zeros(12), 0
    for _ in range(500):
        res = engine.generate(prompt)
        if res.token_ids[0] == x1:
            counts[res.token_ids[1]] += 1
        lookup_hits += res.stats.accepted_by_source["lookup"] + res.stats.accepted_by_source["both"]
    assert counts.sum() > 100 and lookup_hits > 20  # lookup nodes were accepted, not only resampled
    exp = p2 * counts.sum()
    keep = exp >= 5
    obs_k = torch.cat([counts[keep], counts[~keep].sum()[None]]).double()
    exp_k = torch.cat([exp[keep], exp[~keep].sum()[None]]).double()
    exp_k = exp_k * obs_k.sum() / exp_k.sum()
    assert chisquare(obs_k.numpy(), exp_k.numpy()).pvalue > 1e-3


@pytest.mark.parametrize("kind", ["lookup", "hybrid"])
def test_cross_request_lookup_is_exact_and_copies_from_earlier_responses(target, kind):
    """One engine serves the same random (non-repeating) prompts twice with the history on: the second pass
    copies the first pass's responses (accepted from the history), and every output stays greedy-exact."""
    look = LookupConfig(min_n=2, max_n=3, k=5, history_tokens=10_000)
    lookup = LookupDrafter(look)
    drafter = lookup if kind == "lookup" else HybridDrafter(LMDrafter(noisy_copy(target, noise=0.4)), lookup)
    cfg = CONFIGS["chain"].model_copy(update={"lookup": look})
    engine = SpeculativeEngine(TargetRunner(target), drafter, cfg)
    cases = prompts(6, seed=3)[::2]  # the non-repeating half
    check_exact(engine, target, cases)
    first = lookup.history_accepted
    taus = [engine.generate(p).stats.tau for p in cases]
    check_exact(engine, target, cases)
    assert lookup.history_accepted > first and min(taus) > 2.0, (first, lookup.history_accepted, taus)
