"""TTT attention (SDPA and flex paths, one mask definition) against a naive per-position loop."""

from __future__ import annotations

import math

import pytest
import torch

from speculative.model.draft import DraftKVCache, Eagle3Draft
from tests.speculative.conftest import tiny_draft_config


def naive_ttt_attention(qs, ks, vs, real):
    """qs/ks/vs: per-step [B, h, T, d] (k/v GQA-expanded). Step k, row q sees step-0 keys <= q (real) and
    the step-1..k keys at row q; written as explicit loops, independent of model/masks.py."""
    b, h, t, d = qs[-1].shape
    step = len(qs) - 1
    res = torch.zeros(b, h, t, d)
    for bi in range(b):
        for qi in range(t):
            keys = [ks[0][bi, :, j] for j in range(qi + 1) if real[bi, j] or j == qi]
            vals = [vs[0][bi, :, j] for j in range(qi + 1) if real[bi, j] or j == qi]
            for s in range(1, step + 1):
                if real[bi, qi]:
                    keys.append(ks[s][bi, :, qi])
                    vals.append(vs[s][bi, :, qi])
            kk, vv = torch.stack(keys, 1), torch.stack(vals, 1)  # [h, n, d]
            scores = (qs[step][bi, :, qi, None, :] * kk).sum(-1) / math.sqrt(d)
            res[bi, :, qi] = (torch.softmax(scores, -1)[..., None] * vv).sum(1)
    return res


def _run(draft, embeds, hidden, real, steps, impl):
    kv: list = []
    outs = []
    pos = torch.arange(embeds[0].shape[1])[None].expand(embeds[0].shape[0], -1)
    for k in range(steps):
        h = draft.forward_ttt(embeds[k], hidden, pos + k, kv, key_padding=real, attn_impl=impl)
        outs.append(h)
        hidden = h
    return outs, kv


@pytest.fixture
def setup():
    torch.manual_seed(0)
    cfg = tiny_draft_config()
    draft = Eagle3Draft(cfg).eval()
    b, t, steps = 2, 7, 3
    embeds = [torch.randn(b, t, cfg.hidden_size) for _ in range(steps)]
    hidden = torch.randn(b, t, cfg.hidden_size)
    real = torch.ones(b, t, dtype=torch.bool)
    real[1, 5:] = False  # right padding in the second row
    return draft, embeds, hidden, real, steps


def test_sdpa_ttt_attention_matches_naive_loop(setup):
    draft, embeds, hidden, real, steps = setup
    attn = draft.midlayer.self_attn
    captured = []
    orig = torch.nn.functional.scaled_dot_product_attention

    def spy(q, k, v, **kw):
        out = orig(q, k, v, **kw)
        captured.append((q, out))
        return out

    torch.nn.functional.scaled_dot_product_attention = spy
    try:
        with torch.no_grad():
            _, kv = _run(draft, embeds, hidden, real, steps, "sdpa")
    finally:
        torch.nn.functional.scaled_dot_product_attention = orig
    rep = attn.heads // attn.kv_heads
    ks = [k.repeat_interleave(rep, 1) for k, _ in kv]
    vs = [v.repeat_interleave(rep, 1) for _, v in kv]
    for step, (_q, out) in enumerate(captured):
        ref = naive_ttt_attention([c[0] for c in captured[: step + 1]], ks, vs, real)
        rows = real  # padded query rows carry no loss; their output is unconstrained
        torch.testing.assert_close(out.transpose(1, 2)[rows], ref.transpose(1, 2)[rows], atol=1e-5, rtol=1e-5)


def test_flex_attention_matches_sdpa(setup):
    draft, embeds, hidden, real, steps = setup
    with torch.no_grad():
        ref, _ = _run(draft, embeds, hidden, real, steps, "sdpa")
        try:
            got, _ = _run(draft, embeds, hidden, real, steps, "flex")
        except Exception as err:  # noqa: BLE001
            pytest.skip(f"flex_attention forward does not run on this CPU build: {type(err).__name__}: {err}"[:300])
    for a, b in zip(ref, got):
        torch.testing.assert_close(a[real], b[real], atol=1e-4, rtol=1e-4)


def test_cached_inference_chain_equals_ttt_unroll(setup):
    """The engine's step-by-step path (KV cache, positions) reproduces TTT row by row: step k at row t
    is the k-th chained draft token after a context ending at t."""
    draft, embeds, hidden, real, steps = setup
    row, t_end = 0, 4
    with torch.no_grad():
        ttt, _ = _run(draft, embeds, hidden, real, steps, "sdpa")
        cache = DraftKVCache()
        ctx = slice(0, t_end + 1)
        pos = torch.arange(t_end + 1)[None]
        pre = draft(None, hidden[row:row + 1, ctx], pos, cache, input_embeds=embeds[0][row:row + 1, ctx])
        torch.testing.assert_close(pre[0], ttt[0][row, ctx], atol=1e-5, rtol=1e-5)
        h = pre[:, -1:]
        for k in range(1, steps):
            h = draft(None, h, torch.tensor([[t_end + k]]), cache,
                      input_embeds=embeds[k][row:row + 1, t_end:t_end + 1])
            torch.testing.assert_close(h[0, 0], ttt[k][row, t_end], atol=1e-5, rtol=1e-5)
