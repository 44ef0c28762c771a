"""The "fast" target backend (llama_fast.LlamaDecoder) against HF's own forward: prefill, steps, tree
verification with an ancestor mask, commits of non-prefix paths followed by more decoding, cache growth,
reuse after reset; on tiny random Llamas (GQA, MHA, explicit head_dim, scaled RoPE, attention biases), a tiny
Qwen2 (q/k/v biases) and the real SmolLM2."""

from __future__ import annotations

import pytest
import torch

from speculative.decode import DecodeConfig, LMDrafter, SpeculativeEngine
from speculative.decode.llama_fast import CACHE_BLOCK
from speculative.decode.target import TargetRunner
from speculative.decode.tree import DraftTree
from tests.conftest import make_tiny_llama

TINY = {
    "gqa": dict(layers=6),
    "mha": dict(layers=3, kv_heads=4),
    "head_dim": dict(layers=3, head_dim=24),  # q/o widths differ from hidden
    "rope_scaled": dict(layers=3, rope_parameters={"rope_type": "linear", "factor": 2.0, "rope_theta": 500.0}),
    "attention_bias": dict(layers=3, attention_bias=True),  # q/k/v and o biases
    "qwen2": {},  # Qwen2ForCausalLM (q/k/v biases, tied head), see make_tiny_qwen2
}


def make_tiny_qwen2(layers: int = 3, seed: int = 0):
    """A random Qwen2ForCausalLM: Llama's layout plus q/k/v biases (made large, so a dropped bias shows)."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(seed)
    cfg = Qwen2Config(vocab_size=256, hidden_size=64, num_hidden_layers=layers, num_attention_heads=4,
                      num_key_value_heads=2, intermediate_size=128, max_position_embeddings=512,
                      tie_word_embeddings=True, rope_theta=1e6, initializer_range=0.2)
    model = Qwen2ForCausalLM(cfg).eval()
    with torch.no_grad():
        for layer in model.model.layers:
            for proj in (layer.self_attn.q_proj, layer.self_attn.k_proj, layer.self_attn.v_proj):
                proj.bias.normal_(0, 0.5)
    return model


def _tiny(name: str):
    if name == "qwen2":
        return make_tiny_qwen2()
    return make_tiny_llama(initializer_range=0.2, **TINY[name])


def _tree() -> DraftTree:
    # root -> a -> c, root -> b -> d -> e, a -> f  (siblings share positions)
    return DraftTree(torch.tensor([5, 17, 23, 99, 42, 7, 61]), [-1, 0, 0, 1, 2, 4, 1],
                     torch.tensor([0, 1, 1, 2, 2, 3, 2]))


@torch.no_grad()
def _hf_last(model, seq: torch.Tensor, aux: list[int]):
    out = model(seq[None], output_hidden_states=True)
    return out.logits[0, -1], torch.cat([out.hidden_states[k][0, -1] for k in aux])


def _close(got, want, tol=1e-4):
    torch.testing.assert_close(got, want, atol=tol, rtol=tol)


@pytest.mark.parametrize("name", sorted(TINY))
def test_prefill_and_steps_match_hf(name):
    model = _tiny(name)
    aux = [0, 1, model.config.num_hidden_layers - 1]
    runner = TargetRunner(model, aux, backend="fast")
    seq = torch.randint(0, 256, (13,), generator=torch.Generator().manual_seed(0))
    pre = runner.prefill(seq)
    with torch.no_grad():
        ref = model(seq[None], output_hidden_states=True)
    _close(pre.logits[-1], ref.logits[0, -1])
    _close(pre.features, torch.cat([ref.hidden_states[k][0] for k in aux], dim=-1))
    for _ in range(4):
        tok = int(pre.logits[-1].argmax())
        seq = torch.cat([seq, torch.tensor([tok])])
        pre = runner.step(tok, want_features=True)
        logits, feats = _hf_last(model, seq, aux)
        _close(pre.logits[-1], logits)
        _close(pre.features[-1], feats)
    assert runner.length == seq.numel()


@pytest.mark.parametrize("name", sorted(TINY))
def test_tree_rounds_with_non_prefix_commits_match_hf(name):
    """Two verify -> commit rounds on non-prefix paths, then plain steps: every logit equals HF's forward
    over the accepted sequence, so compaction left exactly the accepted keys/values in order."""
    model = _tiny(name)
    aux = [0, 2]
    runner = TargetRunner(model, aux, backend="fast")
    seq = torch.randint(0, 256, (9,), generator=torch.Generator().manual_seed(1))
    runner.prefill(seq)
    tree = _tree()
    for path in ([0, 2, 4, 5], [0, 1, 6]):
        out = runner.verify(tree.tokens, tree.depths, tree.ancestor_mask())
        for i in range(tree.size):
            logits, feats = _hf_last(model, torch.cat([seq, tree.tokens[tree.path_to(i)]]), aux)
            _close(out.logits[i], logits)
            _close(out.features[i], feats)
        runner.commit(path, tree.size)
        seq = torch.cat([seq, tree.tokens[path]])
        assert runner.length == seq.numel()
    for tok in (3, 8):
        got = runner.step(tok).logits[-1]
        seq = torch.cat([seq, torch.tensor([tok])])
        _close(got, _hf_last(model, seq, aux)[0])


def test_cache_grows_inside_a_forward_and_keeps_its_contents():
    model = _tiny("gqa")
    runner = TargetRunner(model, backend="fast")
    seq = torch.randint(0, 256, (CACHE_BLOCK - 3,), generator=torch.Generator().manual_seed(2))
    runner.prefill(seq, want_features=False)
    assert runner.fast.capacity == CACHE_BLOCK
    tree = _tree()  # 7 nodes: slots CACHE_BLOCK - 3 .. CACHE_BLOCK + 3
    out = runner.verify(tree.tokens, tree.depths, tree.ancestor_mask(), want_features=False)
    assert runner.fast.capacity == 2 * CACHE_BLOCK
    _close(out.logits[5], _hf_last(model, torch.cat([seq, tree.tokens[tree.path_to(5)]]), [0])[0])
    runner.commit([0, 2, 4, 5], tree.size)
    seq = torch.cat([seq, tree.tokens[[0, 2, 4, 5]]])
    _close(runner.step(11).logits[-1], _hf_last(model, torch.cat([seq, torch.tensor([11])]), [0])[0])


def test_prefill_after_a_longer_sequence_ignores_stale_slots():
    model = _tiny("gqa")
    runner = TargetRunner(model, backend="fast")
    runner.prefill(torch.randint(0, 256, (40,), generator=torch.Generator().manual_seed(3)), want_features=False)
    short = torch.tensor([1, 2, 3])
    got = runner.prefill(short, want_features=False).logits[-1]
    _close(got, _hf_last(model, short, [0])[0])
    _close(runner.step(4).logits[-1], _hf_last(model, torch.tensor([1, 2, 3, 4]), [0])[0])


def test_backend_choice():
    assert TargetRunner(_tiny("gqa")).backend == "fast"
    biased = make_tiny_llama(layers=2, mlp_bias=True)
    assert TargetRunner(biased).backend == "hf"  # auto falls back where the fast forward does not apply
    with pytest.raises(ValueError, match="MLP biases"):
        TargetRunner(biased, backend="fast")
    assert TargetRunner(_tiny("qwen2")).backend == "fast"
    windowed = make_tiny_qwen2(layers=2)
    windowed.config.use_sliding_window = True
    with pytest.raises(ValueError, match="sliding-window"):
        TargetRunner(windowed, backend="fast")
    assert TargetRunner(_tiny("gqa"), backend="hf").fast is None


# ---------------------------------------------------------------- the real SmolLM2-135M (fp32 CPU)
def test_smollm2_fast_forward_matches_hf(smollm2):
    model, tok = smollm2
    ids = torch.tensor(tok("The capital of France is Paris, and the capital of Italy is")["input_ids"])
    aux = [1, 15, 27]
    runner = TargetRunner(model, aux, backend="fast")
    pre = runner.prefill(ids)
    with torch.no_grad():
        ref = model(ids[None], output_hidden_states=True)
    _close(pre.logits[-1], ref.logits[0, -1], 2e-3)
    _close(pre.features, torch.cat([ref.hidden_states[k][0] for k in aux], dim=-1), 2e-3)
    tree = DraftTree(torch.tensor([12, 377, 4451, 30, 2767, 28, 2188]), [-1, 0, 0, 1, 2, 4, 1],
                     torch.tensor([0, 1, 1, 2, 2, 3, 2]))
    out = runner.verify(tree.tokens, tree.depths, tree.ancestor_mask())
    for i in (3, 5, 6):
        logits, feats = _hf_last(model, torch.cat([ids, tree.tokens[tree.path_to(i)]]), aux)
        _close(out.logits[i], logits, 2e-3)
        _close(out.features[i], feats, 2e-3)
    runner.commit([0, 2, 4, 5], tree.size)
    seq = torch.cat([ids, tree.tokens[[0, 2, 4, 5]], torch.tensor([1138])])
    _close(runner.step(1138).logits[-1], _hf_last(model, seq, aux)[0], 2e-3)


def test_smollm2_autoregressive_equals_hf_greedy(smollm2):
    model, tok = smollm2
    text = tok.apply_chat_template([{"role": "user", "content": "Name three colors."}], tokenize=False,
                                   add_generation_prompt=True)
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"])
    with torch.no_grad():
        ref = model.generate(ids[None], attention_mask=torch.ones_like(ids)[None], max_new_tokens=24,
                             do_sample=False, eos_token_id=None, pad_token_id=0)[0, ids.numel():].tolist()
    cfg = DecodeConfig(mode="chain", depth=2, max_new_tokens=24, stop_on_eos=False)
    engine = SpeculativeEngine(TargetRunner(model), LMDrafter(model), cfg)
    assert engine.target.backend == "fast"
    assert engine.generate_autoregressive(ids).token_ids == ref
