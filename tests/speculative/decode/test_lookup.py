"""Prompt lookup: the incremental n-gram index against a naive search, and the drafter's confidence."""

import math
import random

import torch

from speculative.decode.config import DecodeConfig, LookupConfig
from speculative.decode.lookup import HistoryIndex, LookupDrafter, NgramIndex
from speculative.decode.tree import LOOKUP


def naive_propose(tokens: list[int], min_n: int, max_n: int, k: int) -> tuple[int, list[int]]:
    """Reference: longest n first, scan backwards for the most recent earlier occurrence of the last n tokens,
    then copy what followed it, reading on into the copy itself past the end of the text."""
    for n in range(max_n, min_n - 1, -1):
        if len(tokens) < n + 1:
            continue
        suffix = tokens[-n:]
        for start in range(len(tokens) - n - 1, -1, -1):
            if tokens[start:start + n] == suffix:
                ext = list(tokens)
                for i in range(k):
                    ext.append(ext[start + n + i])
                return n, ext[len(tokens):]
    return 0, []


def draw_sizes(rng: random.Random, max_k: int) -> tuple[int, int, int]:
    """Random (min_n, max_n, k) for the randomised index checks."""
    min_n = rng.randint(1, 3)
    return min_n, rng.randint(min_n, 5), rng.randint(1, max_k)


def test_index_equals_naive_search_on_random_streams():
    rng = random.Random(0)
    checked = hits = 0
    for trial in range(60):
        min_n, max_n, k = draw_sizes(rng, 7)
        vocab = rng.randint(2, 6)  # small vocabularies: many matches, overlapping and periodic ones
        index, tokens = NgramIndex(min_n, max_n), []
        for _ in range(rng.randint(1, 25)):
            chunk = [rng.randrange(vocab) for _ in range(rng.randint(1, 5))]
            tokens += chunk
            index.extend(chunk)
            got, want = index.propose(k), naive_propose(tokens, min_n, max_n, k)
            assert got == want, (trial, tokens, min_n, max_n, k)
            checked += 1
            hits += bool(want[1])
        cut = rng.randint(0, len(tokens))
        index.truncate(cut)  # re-indexing after a truncation gives the same answers
        tokens = tokens[:cut]
        assert index.propose(k) == naive_propose(tokens, min_n, max_n, k)
    assert hits > checked // 3 and hits < checked  # both outcomes exercised


def test_most_recent_occurrence_longest_n_first_and_periodic_copy():
    assert NgramIndex(2, 2).tokens == []
    idx = NgramIndex(2, 2)
    idx.extend([5, 6, 1, 5, 6, 2, 5, 6])
    assert idx.propose(3) == (2, [2, 5, 6])  # the most recent [5, 6] was followed by 2, not the first one's 1
    idx = NgramIndex(2, 3)
    idx.extend([1, 2, 3, 7, 9, 2, 3, 8, 1, 2, 3])
    assert idx.propose(1) == (3, [7])  # the 3-gram match wins over the more recent 2-gram one
    idx = NgramIndex(1, 2)
    idx.extend([4, 4, 4])
    assert idx.propose(5) == (2, [4, 4, 4, 4, 4])  # a match right before the suffix: the period continues
    idx = NgramIndex(2, 4)
    idx.extend([1, 2, 3])
    assert idx.propose(4) == (0, [])


def test_drafter_syncs_like_the_engine_and_learns_its_acceptance_rate():
    cfg = LookupConfig(min_n=2, max_n=2, k=4, prior_accept=0.5, prior_weight=2.0, decay=1.0)
    d = LookupDrafter(cfg)
    d.reset()
    assert d.sync(torch.tensor([1, 2, 3, 4, 1, 2]), None, 0) is None  # prompt + root
    tree = d.draft_tree(2, None, DecodeConfig(mode="chain", depth=1))
    assert tree.tokens.tolist() == [2, 3, 4, 1, 2] and tree.parents == [-1, 0, 1, 2, 3]
    assert tree.sources == [0] + [LOOKUP] * 4
    assert d.rate(2) == 0.5 and all(s < 0 for s in tree.scores[1:])
    # the target accepted 3, 4 then produced 9: 2 accepted of 3 tested; the engine re-sends the old root first
    d.sync(torch.tensor([2, 3, 4, 9]), None, 5)
    assert d.index.tokens == [1, 2, 3, 4, 1, 2, 3, 4, 9]
    assert math.isclose(d.rate(2), (2 + 1) / (3 + 2))
    # no 2-gram match for [4, 9]: nothing proposed, nothing learnt
    assert d.draft_tree(9, None, DecodeConfig()).size == 1
    d.sync(torch.tensor([9, 5]), None, 8)
    assert math.isclose(d.rate(2), 0.6)


def test_confidence_cutoff_and_budget_shorten_the_lookup_chain():
    cfg = LookupConfig(min_n=1, max_n=1, k=6, prior_accept=0.5, prior_weight=1.0)
    d = LookupDrafter(cfg)
    d.sync(torch.tensor([7, 1, 2, 3, 4, 5, 6, 7]), None, 0)
    full = d.draft_tree(7, None, DecodeConfig())
    assert full.tokens.tolist() == [7, 1, 2, 3, 4, 5, 6]
    # rate 0.5: depth i scores 0.5**i, so a 0.2 cut-off keeps two tokens; a budget of one keeps one
    assert d.draft_tree(7, None, DecodeConfig(min_draft_prob=0.2)).tokens.tolist() == [7, 1, 2]
    assert d.draft_tree(7, None, DecodeConfig(max_tree_tokens=1)).tokens.tolist() == [7, 1]
    # what is learnt is measured against the verified (cut) chain: 1 accepted of 1 tested
    d.sync(torch.tensor([7, 1, 2]), None, 7)
    assert math.isclose(d.rate(1), (1 + 0.5) / (1 + 1))


def naive_history(seqs: list[list[int]], context: list[int], min_n: int, max_n: int, k: int) -> tuple[int, list[int]]:
    """Reference: longest n first, the latest stored response first, the latest occurrence in it first; the
    occurrence must be followed by at least one token."""
    for n in range(min(max_n, len(context)), min_n - 1, -1):
        suffix = context[-n:]
        for seq in reversed(seqs):
            for end in range(len(seq) - 2, n - 2, -1):
                if seq[end + 1 - n: end + 1] == suffix:
                    return n, seq[end + 1: end + 1 + k]
    return 0, []


def test_history_index_equals_naive_search_and_drops_the_oldest_responses():
    rng = random.Random(1)
    hits = checked = 0
    for trial in range(40):
        min_n, max_n, k = draw_sizes(rng, 6)
        cap = rng.choice([10, 40, 10_000])
        hist, kept = HistoryIndex(min_n, max_n, cap), []
        for _ in range(rng.randint(1, 12)):
            resp = [rng.randrange(4) for _ in range(rng.randint(0, 15))]
            hist.add(resp)
            if len(resp[-cap:]) >= 2:
                kept.append(resp[-cap:])
            if sum(map(len, kept)) > cap:  # the oldest go until at most half the budget is left (one always stays)
                while sum(map(len, kept)) > cap // 2 and len(kept) > 1:
                    kept.pop(0)
            assert hist.seqs == kept and hist.size == sum(map(len, kept)) <= max(cap, len(kept[-1]) if kept else 0)
            context = [rng.randrange(4) for _ in range(rng.randint(1, 6))]
            got, want = hist.propose(context, k), naive_history(kept, context, min_n, max_n, k)
            assert got == want, (trial, kept, context)
            checked += 1
            hits += bool(want[1])
    assert 0 < hits < checked


def test_drafter_falls_back_to_earlier_responses_and_keeps_them_across_requests():
    cfg = LookupConfig(min_n=2, max_n=3, k=4, history_tokens=100)
    d = LookupDrafter(cfg)
    d.sync(torch.tensor([1, 2, 3, 4]), None, 0)
    d.finish([4, 5, 6, 7, 8, 9])  # request 1's response
    d.reset()  # request 2: its own text has no repeat, the history has [5, 6]
    d.sync(torch.tensor([9, 9, 1, 5, 6]), None, 0)
    key, chain, scores = d.propose()
    assert (key, chain) == (-2, [7, 8, 9])
    tree = d.draft_tree(6, None, DecodeConfig(mode="chain", depth=1))
    assert tree.tokens.tolist() == [6, 7, 8, 9] and tree.sources == [0] + [LOOKUP] * 3
    d.sync(torch.tensor([6, 7, 8, 1]), None, 4)  # 7, 8 accepted, 1 from the target
    assert d.history_accepted == 2 and math.isclose(d.rate(-2), (2 + 0.6 * 2) / (3 + 2))
    assert d.rate(2) == 0.6  # own-text matches keep their own statistics
    d.sync(torch.tensor([1, 5, 6]), None, 7)  # the request's own [1, 5, 6] (followed by 7 earlier) wins now
    assert d.propose()[:2] == (3, [7, 8, 1, 5])
    off = LookupDrafter(LookupConfig(min_n=2, max_n=3, k=4))
    off.finish([4, 5, 6, 7])
    off.sync(torch.tensor([9, 5, 6]), None, 0)
    assert off.history is None and off.propose()[:2] == (0, [])
