import torch

from speculative.decode.eagle3_drafter import Eagle3Drafter
from speculative.model import DraftKVCache, Eagle3Draft, Eagle3DraftConfig

from .helpers import tiny_target


def _draft(seed: int = 0, draft_vocab: int = 100):
    target = tiny_target()
    cfg = Eagle3DraftConfig.from_target(target.config, draft_vocab_size=draft_vocab)
    torch.manual_seed(seed)
    draft = Eagle3Draft(cfg, embed_weight=target.get_input_embeddings().weight.detach()).eval()
    with torch.no_grad():  # a non-trivial vocab map: draft id i -> target id 2i + 1
        d2t = torch.arange(draft_vocab) + 1
        t2d = torch.zeros(cfg.vocab_size, dtype=torch.bool)
        t2d[torch.arange(draft_vocab) * 2 + 1] = True
        draft.set_vocab_mapping(d2t, t2d)
    return draft


def _reference_chain(draft, feats, ids, chain):
    """The draft's own forward + DraftKVCache (correct for chains): log-probs after each chain token."""
    with torch.no_grad():
        cache = DraftKVCache()
        n = feats.shape[0]
        pre = draft(ids[None, 1:], draft.project_aux(feats)[None], torch.arange(n)[None], cache)
        out = [torch.log_softmax(draft.logits(pre[0, -1]), -1)]
        hidden = pre[:, -1:]
        for j, tok in enumerate(chain):
            hidden = draft(torch.tensor([[tok]]), hidden, torch.tensor([[n + j]]), cache)
            out.append(torch.log_softmax(draft.logits(hidden[0, -1]), -1))
    return out


def _on_draft_vocab(draft, lp_target):
    return lp_target[draft.draft_to_target(torch.arange(draft.config.draft_vocab_size))]


def test_sync_and_chain_expand_match_the_draft_forward():
    draft = _draft()
    g = torch.Generator().manual_seed(0)
    feats = torch.randn(7, 3 * draft.config.target_hidden_size, generator=g)
    ids = torch.randint(0, 256, (8,), generator=g)
    chain = [5, 9, 11]
    ref = _reference_chain(draft, feats, ids, chain)
    runner = Eagle3Drafter(draft)
    got = [runner.sync(ids, feats, 0)]
    parent = -1
    for j, tok in enumerate(chain):
        got.append(runner.expand(torch.tensor([tok]), [parent])[0])
        parent = j
    for r, x in zip(ref, got):
        torch.testing.assert_close(_on_draft_vocab(draft, x), r, atol=1e-5, rtol=1e-5)
        assert torch.isinf(x).sum() == draft.config.vocab_size - draft.config.draft_vocab_size


def test_tree_siblings_do_not_see_each_other_and_resync_drops_the_tree():
    draft = _draft(seed=1)
    g = torch.Generator().manual_seed(1)
    feats = torch.randn(5, 3 * draft.config.target_hidden_size, generator=g)
    ids = torch.randint(0, 256, (6,), generator=g)
    runner = Eagle3Drafter(draft)
    runner.sync(ids, feats, 0)
    level1 = runner.expand(torch.tensor([5, 9]), [-1, -1])  # two siblings at the same position
    level2 = runner.expand(torch.tensor([11, 3]), [1, 0])  # a child of each
    for sib, child, row1, row2 in ((5, 3, 0, 1), (9, 11, 1, 0)):
        ref = _reference_chain(draft, feats, ids, [sib, child])
        torch.testing.assert_close(_on_draft_vocab(draft, level1[row1]), ref[1], atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(_on_draft_vocab(draft, level2[row2]), ref[2], atol=1e-5, rtol=1e-5)
    # committing two more tokens at position 5 must equal a from-scratch run over the longer context
    more = torch.randn(2, 3 * draft.config.target_hidden_size, generator=g)
    lp = runner.sync(torch.tensor([int(ids[-1]), 7, 8]), more, 5)
    fresh = Eagle3Drafter(draft).sync(torch.cat([ids, torch.tensor([7, 8])]), torch.cat([feats, more]), 0)
    torch.testing.assert_close(lp, fresh, atol=1e-5, rtol=1e-5)


def _bf16_valued(draft):
    """The draft with every parameter rounded to bf16 values (what an exported draft holds), kept in fp32."""
    with torch.no_grad():
        for p in draft.parameters():
            p.copy_(p.to(torch.bfloat16).float())
    return draft


def test_bf16_valued_draft_runs_on_bf16_weights_with_the_same_outputs():
    from runtime.ops import small_m_kernel_available

    draft = _bf16_valued(_draft(seed=2))
    g = torch.Generator().manual_seed(2)
    feats = torch.randn(5, 3 * draft.config.target_hidden_size, generator=g)
    ids = torch.randint(0, 256, (6,), generator=g)
    auto, fp32 = Eagle3Drafter(draft), Eagle3Drafter(draft, storage=torch.float32)
    assert fp32.w_head.dtype == torch.float32
    assert auto.w_head.dtype == (torch.bfloat16 if small_m_kernel_available() else torch.float32)
    for runner in (auto, fp32):
        runner.out = [runner.sync(ids, feats, 0), runner.expand(torch.tensor([3, 7]), [-1, -1])]
    for a, b in zip(auto.out, fp32.out):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    # weights that are not bf16 values stay in fp32: rounding them would change the draft
    assert Eagle3Drafter(_draft(seed=2)).w_head.dtype == torch.float32
