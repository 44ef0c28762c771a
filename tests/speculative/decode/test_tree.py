import torch

from speculative.decode.tree import build_tree, chain_tree


class TableDrafter:
    """Deterministic fake drafter: next-token log-probs depend only on the fed token."""

    def __init__(self, vocab: int = 12, seed: int = 0):
        g = torch.Generator().manual_seed(seed)
        self.table = torch.log_softmax(torch.randn(vocab, vocab, generator=g) * 2, -1)
        self.calls: list[list[int]] = []

    def expand(self, tokens, parents):
        self.calls.append(list(parents))
        return self.table[tokens]


def all_scores(tree, drafter, root_lp):
    """Cumulative log-prob of every node, recomputed along its path."""
    out = [0.0]
    for i in range(1, tree.size):
        p = tree.parents[i]
        lp = root_lp if p == 0 else drafter.table[int(tree.tokens[p])]
        out.append(out[p] + float(lp[int(tree.tokens[i])]))
    return out


def test_chain_is_greedy_path_of_the_drafter():
    d = TableDrafter()
    root_lp = d.table[3]
    tree = build_tree(3, root_lp, d, depth=5, topk=1, num_draft_tokens=5)
    expect, tok = [], 3
    for _ in range(5):
        tok = int(d.table[tok].argmax())
        expect.append(tok)
    assert tree.tokens.tolist() == [3, *expect]
    assert tree.parents == [-1, 0, 1, 2, 3, 4]
    assert tree.depths.tolist() == list(range(6))


def test_dynamic_tree_structure_and_reranking():
    for seed in range(10):
        d = TableDrafter(seed=seed)
        root_lp = d.table[0]
        tree = build_tree(0, root_lp, d, depth=4, topk=3, num_draft_tokens=10)
        assert tree.size == 11
        scores = all_scores(tree, d, root_lp)
        for i in range(1, tree.size):
            p = tree.parents[i]
            assert p < i and tree.depths[i] == tree.depths[p] + 1
            assert scores[i] <= scores[p] + 1e-6
        # siblings are distinct tokens (top-k of one distribution)
        for kids in tree.children():
            toks = [int(tree.tokens[c]) for c in kids]
            assert len(toks) == len(set(toks))
        # frontier expansion: each depth feeds at most topk nodes, depth-1 expansions in total
        assert len(d.calls) == 3 and all(len(c) <= 3 for c in d.calls)
        # the depth-1 level is exactly the top-3 of the root distribution that survived reranking
        d1 = {int(tree.tokens[i]) for i in range(1, tree.size) if tree.depths[i] == 1}
        assert d1 <= set(root_lp.topk(3).indices.tolist())


def test_rerank_keeps_the_best_candidates():
    # with num_draft_tokens = all candidates, then fewer: the kept set are the highest scoring ones
    d = TableDrafter(seed=3)
    full = build_tree(0, d.table[0], d, depth=3, topk=3, num_draft_tokens=100)
    full_scores = sorted(all_scores(full, d, d.table[0])[1:], reverse=True)
    assert full.size - 1 == 3 + 3 + 3  # k candidates per depth survive into the pool
    small = build_tree(0, d.table[0], TableDrafter(seed=3), depth=3, topk=3, num_draft_tokens=4)
    kept = sorted(all_scores(small, d, d.table[0])[1:], reverse=True)
    assert kept == full_scores[:4]


def test_ancestor_mask_matches_paths():
    d = TableDrafter(seed=5)
    tree = build_tree(0, d.table[0], d, depth=4, topk=2, num_draft_tokens=7)
    mask = tree.ancestor_mask()
    for i in range(tree.size):
        assert set(torch.nonzero(mask[i])[:, 0].tolist()) == set(tree.path_to(i))
    chain = chain_tree(1, [4, 5])
    assert chain.ancestor_mask().tolist() == [[True, False, False], [True, True, False], [True, True, True]]


def test_confidence_cutoff_keeps_exactly_the_nodes_above_it():
    for seed in range(6):
        d = TableDrafter(seed=seed)
        full = build_tree(0, d.table[0], d, depth=4, topk=3, num_draft_tokens=100)
        full_scores = all_scores(full, d, d.table[0])
        cut = 0.05
        d2 = TableDrafter(seed=seed)
        pruned = build_tree(0, d2.table[0], d2, depth=4, topk=3, num_draft_tokens=100, min_prob=cut)
        scores = all_scores(pruned, d2, d2.table[0])
        assert all(s >= torch.tensor(cut).log().item() - 1e-6 for s in scores[1:])
        # the same nodes as the uncut tree's nodes above the cut-off (the frontier only loses hopeless nodes)
        above = sorted(round(s, 5) for s in full_scores[1:] if s >= torch.tensor(cut).log().item())
        assert sorted(round(s, 5) for s in scores[1:]) == above
        assert len(d2.calls) <= len(d.calls)


def test_confidence_cutoff_can_leave_the_root_alone():
    d = TableDrafter(seed=1)
    tree = build_tree(7, d.table[7], d, depth=5, topk=1, num_draft_tokens=5, min_prob=1.0)
    assert tree.size == 1 and tree.parents == [-1] and d.calls == []


def test_merge_chain_shares_equal_tokens_and_keeps_siblings_distinct():
    from speculative.decode.tree import LOOKUP, MODEL, merge_chain

    for seed in range(8):
        d = TableDrafter(seed=seed)
        tree = build_tree(0, d.table[0], d, depth=3, topk=2, num_draft_tokens=6)
        # a chain that starts along the model's deepest path, then leaves it
        path = tree.path_to(max(range(tree.size), key=lambda i: int(tree.depths[i])))
        taken = {int(tree.tokens[c]) for c in tree.children()[path[2]]}
        off = next(t for t in range(12) if t not in taken)
        chain = [int(tree.tokens[path[1]]), int(tree.tokens[path[2]]), off, 3, off]
        merged = merge_chain(tree, chain, [-0.1 * (i + 1) for i in range(len(chain))])
        assert merged.tokens[: tree.size].tolist() == tree.tokens.tolist()  # old nodes keep their ids
        for i in range(1, merged.size):
            assert merged.parents[i] < i and merged.depths[i] == merged.depths[merged.parents[i]] + 1
        for kids in merged.children():
            toks = [int(merged.tokens[c]) for c in kids]
            assert len(toks) == len(set(toks))
        # the chain is a path of the merged tree; its shared prefix carries both flags
        node, kids = 0, merged.children()
        for j, tok in enumerate(chain):
            node = next(c for c in kids[node] if int(merged.tokens[c]) == tok)
            assert merged.sources[node] & LOOKUP
            assert (merged.sources[node] == MODEL | LOOKUP) == (j < 2)
        assert merged.size == tree.size + 3
        mask = merged.ancestor_mask()
        for i in range(merged.size):
            assert set(torch.nonzero(mask[i])[:, 0].tolist()) == set(merged.path_to(i))


def test_prune_keeps_the_most_confident_nodes_closed_under_ancestors():
    from speculative.decode.tree import chain_nodes, merge_chain, prune_tree

    for seed in range(8):
        d = TableDrafter(seed=seed)
        tree = build_tree(0, d.table[0], d, depth=4, topk=3, num_draft_tokens=12)
        chain = [int(d.table[0].argmax()), 5, 5, 5]
        merged = merge_chain(tree, chain, [-0.05, -0.5, -1.5, -6.0])
        for budget in (1, 3, 6):
            pruned = prune_tree(merged, budget)
            assert pruned.size == budget + 1
            kept = sorted(pruned.scores[1:], reverse=True)
            assert kept == sorted(merged.scores[1:], reverse=True)[:budget]
            assert all(pruned.parents[i] < i for i in range(1, pruned.size))
            assert all(pruned.scores[i] <= pruned.scores[pruned.parents[i]] for i in range(1, pruned.size))
            assert 1 <= chain_nodes(pruned, chain) <= min(budget, 4)
        floor = torch.tensor(0.3).log().item()
        cut = prune_tree(merged, None, min_prob=0.3)
        assert sorted(cut.scores[1:]) == sorted(s for s in merged.scores[1:] if s >= floor)
        walk, node, kids = 0, 0, merged.children()
        for tok in chain:  # the chain survives as long as its merged scores stay above the cut-off
            node = next(c for c in kids[node] if int(merged.tokens[c]) == tok)
            if merged.scores[node] < floor:
                break
            walk += 1
        assert chain_nodes(cut, chain) == walk >= 2 and chain_nodes(merged, chain) == 4
