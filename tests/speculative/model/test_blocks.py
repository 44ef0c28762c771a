"""Our Llama blocks against transformers' (the reference the exports and vLLM assume)."""

import pytest
import torch
from transformers import LlamaConfig
from transformers.models.llama.modeling_llama import LlamaMLP, LlamaRMSNorm, LlamaRotaryEmbedding
from transformers.models.llama.modeling_llama import apply_rotary_pos_emb as hf_apply_rotary

from speculative.model.blocks import (
    DefaultRotaryEmbedding,
    GatedMLP,
    RMSNorm,
    apply_rotary_pos_emb,
    rotary_embedding,
)


def _cfg(**rope):
    return LlamaConfig(hidden_size=96, intermediate_size=160, num_attention_heads=3, num_key_value_heads=1,
                       head_dim=32, num_hidden_layers=1, vocab_size=64, rms_norm_eps=1e-5,
                       rope_parameters={"rope_type": "default", "rope_theta": 100000.0, **rope})


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_rmsnorm_matches_llama_rmsnorm(dtype):
    torch.manual_seed(0)
    ours, ref = RMSNorm(96, eps=1e-5), LlamaRMSNorm(96, eps=1e-5)
    w = torch.randn(96)
    ours.weight.data.copy_(w), ref.weight.data.copy_(w)
    x = (torch.randn(2, 7, 96) * 5).to(dtype)
    assert torch.equal(ours(x), ref(x))
    assert list(ours.state_dict()) == list(ref.state_dict()) == ["weight"]


def test_mlp_matches_llama_mlp_with_the_same_parameter_names():
    torch.manual_seed(0)
    ref = LlamaMLP(_cfg())
    ours = GatedMLP(96, 160, "silu")
    ours.load_state_dict(ref.state_dict())  # strict: same names and shapes
    x = torch.randn(3, 5, 96)
    assert torch.equal(ours(x), ref(x))


def test_unknown_activation_is_refused():
    with pytest.raises(ValueError, match="not supported"):
        GatedMLP(8, 16, "relu6")


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_default_rope_matches_llama_rotary_embedding(dtype):
    cfg = _cfg()
    ours, ref = DefaultRotaryEmbedding(32, 100000.0), LlamaRotaryEmbedding(cfg)
    assert torch.equal(ours.inv_freq, ref.inv_freq)
    x = torch.randn(2, 9, 96, dtype=dtype)
    pos = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7, 8], [3, 4, 5, 6, 9, 10, 11, 500, 8000]])
    (c1, s1), (c2, s2) = ours(x, pos), ref(x, pos)
    assert c1.dtype == c2.dtype == dtype
    assert torch.equal(c1, c2) and torch.equal(s1, s2)
    q, k = torch.randn(2, 3, 9, 32, dtype=dtype), torch.randn(2, 1, 9, 32, dtype=dtype)
    for a, b in zip(apply_rotary_pos_emb(q, k, c1, s1), hf_apply_rotary(q, k, c2, s2), strict=True):
        assert torch.equal(a, b)


def test_other_rope_types_delegate_to_transformers():
    params = {"rope_type": "linear", "rope_theta": 10000.0, "factor": 2.0}
    module = rotary_embedding(32, params, lambda: _cfg(rope_type="linear", rope_theta=10000.0, factor=2.0))
    assert isinstance(module, LlamaRotaryEmbedding)
    plain = rotary_embedding(32, {"rope_type": "default", "rope_theta": 10000.0}, lambda: pytest.fail("not needed"))
    assert isinstance(plain, DefaultRotaryEmbedding)
    assert not torch.equal(module.inv_freq, plain.inv_freq)  # linear scaling really applied
