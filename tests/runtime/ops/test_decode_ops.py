"""Decoding kernels (csrc/cpu/small_m_linear.cpp's SwiGLU variant, csrc/cpu/decode_attention.cpp) against
their float64 torch references, and the runtime.ops wrappers' fallbacks."""

from __future__ import annotations

import pytest
import torch

from runtime import ops
from runtime.ops.reference import decode_attention_reference
from tests.runtime.ops.conftest import require_impl


def require_op(name: str) -> None:
    require_impl("cpu")
    if not hasattr(torch.ops.llmsys, name):
        pytest.skip(f"the installed runtime._C predates llmsys::{name} (run `make setup`)")


def _swiglu64(x, gate_up):
    gu = x.double() @ gate_up.double().t()
    inner = gate_up.shape[0] // 2
    return torch.nn.functional.silu(gu[:, :inner]) * gu[:, inner:]


@pytest.mark.parametrize("rows", range(1, ops.SMALL_M_MAX + 1))
@pytest.mark.parametrize("k", [8, 37, 576])
def test_swiglu_kernel_matches_float64(rows, k, small_m_isa):
    require_op("small_m_swiglu")
    gen = torch.Generator().manual_seed(rows * 100 + k)
    x, w = torch.randn(rows, k, generator=gen), torch.randn(2 * 67, k, generator=gen) / k ** 0.5  # I = 67: tails
    torch.testing.assert_close(torch.ops.llmsys.small_m_swiglu(x, w), _swiglu64(x, w).float(), rtol=1e-5, atol=1e-5)


def test_swiglu_wrapper_falls_back_outside_the_kernel():
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(2 * 20, 16, generator=gen)
    with torch.inference_mode():
        for x in (torch.randn(3, 16, generator=gen), torch.randn(12, 16, generator=gen)):  # kernel, then F.linear
            torch.testing.assert_close(ops.decode_swiglu(x, w), _swiglu64(x, w).float(), rtol=1e-5, atol=1e-5)
        x64 = torch.randn(2, 16, generator=gen, dtype=torch.float64)
        torch.testing.assert_close(ops.decode_swiglu(x64, w.double()), _swiglu64(x64, w))


def _attention_case(t: int, past: int, heads: int, kv_heads: int, d: int, seed: int, dtype=torch.float32):
    gen = torch.Generator().manual_seed(seed)
    qkv = torch.randn(t, (heads + 2 * kv_heads) * d, generator=gen, dtype=dtype)
    angles = torch.arange(64, dtype=dtype)[:, None] * torch.rand(d // 2, generator=gen, dtype=dtype)
    cache = torch.randn(2, kv_heads, past + t + 5, d, generator=gen, dtype=dtype)  # slots >= past get written
    positions = past + torch.randint(0, 4, (t,), generator=gen)
    return qkv, angles.cos(), angles.sin(), positions, cache


def _tree_mask(t: int, width: int, seed: int) -> torch.Tensor:
    """[t, width] over the last `width` slots: random ancestor sets, each new token seeing itself."""
    mask = torch.rand(t, width, generator=torch.Generator().manual_seed(seed)) < 0.5
    mask[torch.arange(t), width - t + torch.arange(t)] = True
    return mask


@pytest.mark.parametrize("t,past,mask_width", [(1, 0, None), (1, 37, None), (4, 9, None), (3, 0, 3),
                                               (8, 21, 8), (5, 12, 9), (20, 30, None)])
@pytest.mark.parametrize("heads,kv_heads,d", [(6, 2, 64), (3, 3, 6)])
def test_attention_kernel_matches_float64_reference(t, past, mask_width, heads, kv_heads, d):
    """Output and written cache slots; mask over the tree (width t) or over older tree slots too (width > t:
    a drafter's tree nodes from earlier expansions); causal when absent; D = 6 exercises the vector tails."""
    require_op("decode_attention")
    qkv, cos, sin, positions, cache = _attention_case(t, past, heads, kv_heads, d, seed=t * 10 + past)
    mask = None if mask_width is None else _tree_mask(t, mask_width, seed=past)
    ref_cache = cache.double()
    want = decode_attention_reference(qkv.double(), cos.double(), sin.double(), positions, ref_cache, past, mask,
                                      heads, d ** -0.5)
    got = torch.ops.llmsys.decode_attention(qkv, cos, sin, positions, cache, past, mask, heads, d ** -0.5)
    torch.testing.assert_close(got, want.float(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cache, ref_cache.float(), rtol=1e-5, atol=1e-5)


def test_attention_reference_is_hf_llama_attention():
    """The reference (and so the kernel) is HF's LlamaAttention: same RoPE, GQA and masking."""
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaAttention, LlamaRotaryEmbedding

    torch.manual_seed(0)
    cfg = LlamaConfig(hidden_size=48, num_attention_heads=4, num_key_value_heads=2, head_dim=12,
                      attn_implementation="eager")
    attn, rotary = LlamaAttention(cfg, layer_idx=0).eval(), LlamaRotaryEmbedding(cfg)
    x = torch.randn(1, 6, 48)
    pos = torch.arange(6)[None]
    cos, sin = rotary(x, pos)
    causal = torch.full((6, 6), float("-inf")).triu(1)[None, None]
    with torch.no_grad():
        want = attn(x, (cos, sin), attention_mask=causal)[0]
        qkv = torch.cat([attn.q_proj(x), attn.k_proj(x), attn.v_proj(x)], -1)[0]
        cache = torch.zeros(2, 2, 6, 12)
        got = attn.o_proj(decode_attention_reference(qkv, cos[0, :, :6], sin[0, :, :6], pos[0], cache, 0, None, 4,
                                                     attn.scaling))
    torch.testing.assert_close(got, want[0], rtol=1e-5, atol=1e-5)


def test_attention_kernel_rejects_bad_shapes():
    require_op("decode_attention")
    qkv, cos, sin, positions, cache = _attention_case(2, 3, 4, 2, 8, seed=0)
    with pytest.raises(RuntimeError, match="capacity"):
        torch.ops.llmsys.decode_attention(qkv, cos, sin, positions, cache, cache.shape[2], None, 4, 1.0)
    with pytest.raises(RuntimeError, match="tree_mask"):
        torch.ops.llmsys.decode_attention(qkv, cos, sin, positions, cache, 3, torch.ones(2, 9, dtype=torch.bool), 4, 1.0)


def test_opcheck_decoding_ops():
    require_op("decode_attention")
    require_op("small_m_swiglu")
    torch.library.opcheck(torch.ops.llmsys.small_m_swiglu.default, (torch.randn(3, 20), torch.randn(14, 20)))
    qkv, cos, sin, positions, cache = _attention_case(3, 4, 4, 2, 8, seed=1)
    torch.library.opcheck(torch.ops.llmsys.decode_attention.default,
                          (qkv, cos, sin, positions, cache, 4, _tree_mask(3, 3, 0), 4, 0.3))


def test_decode_ops_decide_the_kernel_once_and_set_impl_redecides(monkeypatch):
    require_op("small_m_linear")
    calls = []
    real = torch.ops.llmsys.small_m_linear
    monkeypatch.setattr(torch.ops.llmsys, "small_m_linear", lambda x, w: calls.append(1) or real(x, w))
    x, w = torch.randn(2, 16), torch.randn(8, 16)
    with torch.inference_mode():
        try:
            monkeypatch.setenv("LLMSYS_OPS_IMPL", "reference")
            ops.set_impl(None)  # forget the earlier decision
            torch.testing.assert_close(ops.decode_linear(x, w), x @ w.t())  # forced off: torch, same numbers
            monkeypatch.setenv("LLMSYS_OPS_IMPL", "cpu")  # not re-read per call (decided once)...
            ops.decode_linear(x, w)
            assert calls == []
        finally:
            monkeypatch.delenv("LLMSYS_OPS_IMPL")
            ops.set_impl(None)  # ...set_impl decides again
        torch.testing.assert_close(ops.decode_linear(x, w), x @ w.t())
        assert calls == [1]
        y, s = ops.decode_rmsnorm_residual(x, x, torch.ones(16), 1e-6)
        ry, rs = ops.rmsnorm_residual(x, x, torch.ones(16), 1e-6)
        torch.testing.assert_close((y, s), (ry, rs))
