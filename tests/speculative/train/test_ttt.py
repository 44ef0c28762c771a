"""TTT unroll: shifts, masks and loss against a naive step-by-step reference; acceptance simulation."""

from __future__ import annotations

import torch

from runtime.ops import soft_cross_entropy_reference
from speculative.data.dataset import Batch
from speculative.model.draft import Eagle3Draft
from speculative.target.backend import TargetOutputs
from speculative.train.ttt import simulated_accept_length, ttt_unroll
from tests.speculative.conftest import tiny_draft_config


def make_inputs(b=2, t=10, seed=0):
    torch.manual_seed(seed)
    cfg = tiny_draft_config()
    draft = Eagle3Draft(cfg)
    ids = torch.randint(0, cfg.vocab_size, (b, t))
    att = torch.ones(b, t, dtype=torch.bool)
    att[1, 7:] = False
    loss = torch.rand(b, t) > 0.3
    probs = torch.softmax(torch.randn(b, t, cfg.draft_vocab_size) * 3, -1)
    tout = TargetOutputs(torch.randn(b, t, 3 * cfg.target_hidden_size), torch.randn(b, t, 24), probs)
    return draft, Batch(ids, att, loss), tout


def test_ttt_loss_matches_naive_reference():
    draft, batch, tout = make_inputs()
    k_steps = 3
    res = ttt_unroll(draft, batch, tout, ttt_length=k_steps, decay=0.8)
    # naive: per row t and step k, feed token t+k+1, predict t+k+2 against target probs at t+k+1
    b, t = batch.input_ids.shape
    kv: list = []
    hidden = draft.project_aux(tout.aux_hidden)
    total = 0.0
    for k in range(k_steps):
        ids_k = torch.zeros_like(batch.input_ids)
        ids_k[:, : t - k - 1] = batch.input_ids[:, k + 1:]
        pos = torch.arange(t)[None].expand(b, t) + k
        pre = draft.forward_ttt(draft.embed(ids_k), hidden, pos, kv, key_padding=batch.attention_mask)
        losses = []
        for bi in range(b):
            for ti in range(t - k - 2):
                j = ti + k + 2
                if batch.attention_mask[bi, j] and batch.loss_mask[bi, j]:
                    lr, _ = soft_cross_entropy_reference(draft.norm(pre[bi, ti])[None], draft.lm_head.weight,
                                                         tout.target_probs[bi, ti + k + 1][None])
                    losses.append(lr[0])
        step = torch.stack(losses).mean()
        assert abs(float(step.detach()) - res.ploss[k]) < 1e-5
        assert res.counted[k] == len(losses)
        total = total + 0.8 ** k * step
        hidden = pre
    torch.testing.assert_close(res.loss, total, atol=1e-5, rtol=1e-5)
    res.loss.backward()
    assert draft.fc.weight.grad is not None and draft.embed_tokens.weight.grad is None


def test_simulated_accept_length():
    # rows: [all 3 correct], [correct, wrong, correct], [wrong], [correct, correct, no target]
    correct = torch.tensor([[1, 1, 0, 1], [1, 0, 0, 1], [1, 1, 0, 1]], dtype=torch.bool)[:, None, :]
    valid = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)[:, None, :]
    tau, n = simulated_accept_length(correct, valid)
    assert n == 4
    assert abs(tau - (4 + 2 + 1 + 3) / 4) < 1e-6


def test_rows_whose_target_argmax_is_outside_the_draft_vocab_are_masked():
    """SpecForge's rule: a row whose full-vocab target argmax the draft vocab cannot express gives no loss
    and counts as a miss; checked against a naive per-row reference."""
    draft, batch, tout = make_inputs(seed=3)
    cfg = draft.config
    b, t = batch.input_ids.shape
    chosen = torch.arange(0, cfg.vocab_size, 2)[: cfg.draft_vocab_size]  # every other target id
    t2d = torch.zeros(cfg.vocab_size, dtype=torch.bool)
    t2d[chosen] = True
    draft.set_vocab_mapping(chosen - torch.arange(cfg.draft_vocab_size), t2d)
    argmax = torch.randint(0, cfg.vocab_size, (b, t))
    masked = TargetOutputs(tout.aux_hidden, tout.last_hidden, tout.target_probs, argmax)
    k_steps = 2
    res = ttt_unroll(draft, batch, masked, ttt_length=k_steps, decay=0.8)
    kv: list = []
    hidden = draft.project_aux(tout.aux_hidden)
    for k in range(k_steps):
        ids_k = torch.zeros_like(batch.input_ids)
        ids_k[:, : t - k - 1] = batch.input_ids[:, k + 1:]
        pos = torch.arange(t)[None].expand(b, t) + k
        pre = draft.forward_ttt(draft.embed(ids_k), hidden, pos, kv, key_padding=batch.attention_mask)
        losses, hits, rows = [], 0, 0
        for bi in range(b):
            for ti in range(t - k - 2):
                j = ti + k + 2
                if not (batch.attention_mask[bi, j] and batch.loss_mask[bi, j]):
                    continue
                rows += 1
                probs = tout.target_probs[bi, ti + k + 1][None]
                lr, am = soft_cross_entropy_reference(draft.norm(pre[bi, ti])[None], draft.lm_head.weight, probs)
                if t2d[argmax[bi, ti + k + 1]]:
                    losses.append(lr[0])
                    hits += int(am[0] == probs.argmax(-1)[0])
        assert res.counted[k] == rows
        assert abs(res.ploss[k] - float(torch.stack(losses).mean())) < 1e-5
        assert abs(res.acc[k] - hits / rows) < 1e-6
        hidden = pre


def test_loss_keeps_no_copy_of_the_target_probabilities():
    """Every tensor of vocab width saved for backward is the target's own probability tensor (a view of it),
    not a shifted copy per TTT step: memory at 32k draft vocab depends on it."""
    draft, batch, tout = make_inputs(seed=5)
    vocab, storage = draft.config.draft_vocab_size, tout.target_probs.untyped_storage().data_ptr()
    wide = []

    def pack(x):
        if x.dim() >= 1 and x.shape[-1] == vocab and x.dtype.is_floating_point and x.numel() > vocab:
            wide.append(x.untyped_storage().data_ptr())
        return x

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda x: x):
        res = ttt_unroll(draft, batch, tout, ttt_length=3)
    res.loss.backward()
    assert wide and all(ptr == storage for ptr in wide)


def test_restricted_probs_equal_the_softmax_of_the_draft_vocab_rows():
    from speculative.target.backend import restricted_probs

    g = torch.Generator().manual_seed(0)
    hidden, head = torch.randn(2, 5, 16, generator=g), torch.randn(300, 16, generator=g)
    t2d = torch.rand(300, generator=g) > 0.4
    want = torch.softmax(hidden @ head[t2d].t(), dim=-1)
    torch.testing.assert_close(restricted_probs(hidden, head, t2d), want, rtol=1e-5, atol=1e-6)
    assert restricted_probs(hidden, head, torch.zeros(300, dtype=torch.bool)).shape == (2, 5, 0)  # aux-only calls


def test_recomputed_steps_give_the_same_loss_and_gradients():
    """Activation checkpointing per TTT step (recompute=True) changes memory, not results."""
    grads = {}
    for recompute in (False, True):
        draft, batch, tout = make_inputs(seed=3)
        res = ttt_unroll(draft, batch, tout, ttt_length=4, recompute=recompute)
        res.loss.backward()
        grads[recompute] = (float(res.loss), res.acc, {n: p.grad.clone() for n, p in draft.named_parameters()
                                                       if p.grad is not None})
    (l0, a0, g0), (l1, a1, g1) = grads[False], grads[True]
    assert l0 == l1 and a0 == a1
    assert g0.keys() == g1.keys() and "midlayer.mlp.up_proj.weight" in g0
    for name in g0:
        torch.testing.assert_close(g1[name], g0[name], rtol=0, atol=0)
