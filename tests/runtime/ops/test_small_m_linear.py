"""Small-M linear kernel (csrc/cpu/small_m_linear.cpp) vs a float64 matmul, dispatch fallbacks, opcheck,
and a whole model routed through it giving the same logits."""

from __future__ import annotations

import pytest
import torch

from runtime import ops
from tests.runtime.ops.conftest import require_impl


@pytest.mark.parametrize("rows", range(1, ops.SMALL_M_MAX + 1))
@pytest.mark.parametrize("k", [8, 37, 576])  # a tail only for AVX-512 (16 lanes), tails for both, SmolLM2's width
def test_kernel_matches_float64_matmul(rows, k, small_m_isa):
    gen = torch.Generator().manual_seed(rows * 1000 + k)
    x, w = torch.randn(rows, k, generator=gen), torch.randn(131, k, generator=gen)
    y = torch.ops.llmsys.small_m_linear(x, w)
    torch.testing.assert_close(y, (x.double() @ w.double().t()).float(), rtol=1e-5, atol=1e-4)


def test_dispatch_uses_the_kernel_only_where_it_applies(monkeypatch):
    require_impl("cpu")
    calls = []
    real = torch.ops.llmsys.small_m_linear
    monkeypatch.setattr(torch.ops.llmsys, "small_m_linear", lambda x, w: calls.append(tuple(x.shape)) or real(x, w))
    w, b = torch.randn(16, 24), torch.randn(16)
    with torch.inference_mode():
        y = ops.small_m_linear(torch.randn(2, 3, 24), w, b)  # 6 rows, leading dims kept, bias added
        assert y.shape == (2, 3, 16) and calls == [(6, 24)]
        ops.small_m_linear(torch.randn(ops.SMALL_M_MAX + 1, 24), w)  # more rows than the kernel takes -> F.linear
        ops.small_m_linear(torch.randn(2, 24, dtype=torch.float64), w.double())  # not fp32 -> F.linear
    x = torch.randn(2, 24, requires_grad=True)
    out = ops.small_m_linear(x, w)  # autograd needed -> F.linear, so gradients flow
    out.sum().backward()
    assert calls == [(6, 24)] and x.grad is not None


def test_opcheck():
    require_impl("cpu")
    torch.library.opcheck(torch.ops.llmsys.small_m_linear.default, (torch.randn(3, 20), torch.randn(7, 20)))


def test_routed_model_gives_the_same_logits():
    require_impl("cpu")
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=300, hidden_size=64, intermediate_size=136, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    model = LlamaForCausalLM(cfg).eval()
    ids = torch.randint(0, 300, (1, 5))
    with torch.inference_mode():
        want = model(ids).logits
        assert ops.use_small_m_linears(model) == 2 * 7 + 1 and ops.use_small_m_linears(model) == 0
        got = model(ids).logits
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


def test_hf_backend_routed_through_the_kernel_keeps_greedy_output(smollm2):
    """runtime.llm's HF backend with its linears on the kernel (batched decode steps of 3 rows, left padding)
    generates the same greedy tokens as the plain model; a model passed in is only routed when asked."""
    import copy

    from runtime.llm import SamplingParams
    from runtime.llm.hf import HFBackend

    require_impl("cpu")
    model, tok = smollm2
    routed = HFBackend(copy.deepcopy(model), tok, batch_size=4, small_m_kernel=True)
    plain = HFBackend(model, tok, batch_size=4)
    linears = [m for m in routed.model.modules() if type(m) is torch.nn.Linear]
    assert linears and all(getattr(m, "_llmsys_small_m", False) for m in linears)
    assert not any(getattr(m, "_llmsys_small_m", False) for m in model.modules())
    prompts = [[{"role": "user", "content": "Name a color."}], "def add(a, b):", "The quick brown fox"]
    params = SamplingParams(max_new_tokens=12)
    assert [g.token_ids for g in routed.generate(prompts, params)] == [g.token_ids for g in plain.generate(prompts, params)]


@pytest.mark.parametrize("rows", range(1, ops.SMALL_M_MAX + 1))
@pytest.mark.parametrize("k", [8, 37, 576])
def test_bf16_weights_match_float64_matmul_of_their_values(rows, k, small_m_isa):
    """bf16 weights are widened exactly and accumulated in fp32: the result is that of their fp32 values."""
    gen = torch.Generator().manual_seed(rows * 7 + k)
    x, w = torch.randn(rows, k, generator=gen), (torch.randn(133, k, generator=gen) / k ** 0.5).to(torch.bfloat16)
    want = (x.double() @ w.double().t()).float()
    torch.testing.assert_close(torch.ops.llmsys.small_m_linear(x, w), want, rtol=1e-5, atol=1e-4)
    gate_up = w[:132]  # I = 66
    gu = x.double() @ gate_up.double().t()
    want = (torch.nn.functional.silu(gu[:, :66]) * gu[:, 66:]).float()
    torch.testing.assert_close(torch.ops.llmsys.small_m_swiglu(x, gate_up), want, rtol=1e-5, atol=1e-4)
    with torch.inference_mode():  # the wrapper's torch fallback (M > SMALL_M_MAX) takes bf16 weights too
        xs = torch.randn(ops.SMALL_M_MAX + 1, k, generator=gen)
        torch.testing.assert_close(ops.decode_linear(xs, w), (xs.double() @ w.double().t()).float(), rtol=1e-5, atol=1e-4)


def test_bf16_weights_need_float32_inputs():
    require_impl("cpu")
    with pytest.raises(RuntimeError, match="float32 x"):
        torch.ops.llmsys.small_m_linear(torch.randn(2, 8, dtype=torch.float64), torch.randn(4, 8).to(torch.bfloat16))


def test_kernel_rejects_more_rows_than_it_has_tables_for():
    """The wrappers route M > SMALL_M_MAX to torch; the op itself refuses it (the C++ tables stop at kMaxRows)."""
    require_impl("cpu")
    w = torch.randn(4, 8)
    torch.ops.llmsys.small_m_linear(torch.randn(ops.SMALL_M_MAX, 8), w)  # the largest size it takes
    with pytest.raises(RuntimeError, match=f"1 <= M <= {ops.SMALL_M_MAX} rows"):
        torch.ops.llmsys.small_m_linear(torch.randn(ops.SMALL_M_MAX + 1, 8), w)


def test_isa_switch_reports_and_refuses(small_m_isa):
    assert ops.small_m_isa() == small_m_isa
    with pytest.raises(RuntimeError, match="expected '', 'auto', 'avx2' or 'avx512'"):
        ops.small_m_isa("sse")
    assert ops.small_m_isa() == small_m_isa  # a refused request changes nothing


def test_isas_agree_on_a_model_sized_matmul():
    """Both instances accumulate in fp32 and differ only in the order of additions within a dot product."""
    require_impl("cpu")
    try:
        ops.small_m_isa("avx512")
    except RuntimeError as err:
        pytest.skip(str(err).splitlines()[0])
    try:
        gen = torch.Generator().manual_seed(3)
        x, w = torch.randn(11, 1536, generator=gen), torch.randn(576, 1536, generator=gen) / 1536 ** 0.5
        wide = torch.ops.llmsys.small_m_linear(x, w)
        ops.small_m_isa("avx2")
        narrow = torch.ops.llmsys.small_m_linear(x, w)
    finally:
        ops.small_m_isa("auto")
    torch.testing.assert_close(wide, narrow, rtol=1e-5, atol=1e-5)
    assert not torch.equal(wide, narrow)  # the AVX-512 instance really ran (different summation order)
