"""Fixtures for speculative/ tests: a tiny random Llama target that uses the real SmolLM2 tokenizer."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def spec_tiny_target_dir(tmp_path_factory):
    """A saved HF folder: random 6-layer Llama (H=64) + the SmolLM2 tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from runtime.assets import load_tokenizer

    tok = load_tokenizer("smollm2-135m-instruct")
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=6, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=1024, tie_word_embeddings=True, bos_token_id=1,
        eos_token_id=2, pad_token_id=2))
    out = tmp_path_factory.mktemp("tiny_target")
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def tiny_draft_config(**kw):
    from speculative.model.draft import Eagle3DraftConfig

    base = dict(hidden_size=32, num_attention_heads=4, num_key_value_heads=2, head_dim=8, intermediate_size=48,
                rms_norm_eps=1e-6, rope_parameters={"rope_type": "default", "rope_theta": 10000.0},
                max_position_embeddings=256, vocab_size=80, draft_vocab_size=40, target_hidden_size=24,
                target_num_layers=8, aux_layer_ids=[2, 4, 5])
    base.update(kw)
    return Eagle3DraftConfig(**base)


def tiny_draft_with_vocab(seed: int = 0, **kw):
    """A random tiny Eagle3Draft whose draft vocab is a random half of the 80 target ids."""
    from speculative.model.draft import Eagle3Draft

    torch.manual_seed(seed)
    d = Eagle3Draft(tiny_draft_config(**kw))
    chosen = torch.sort(torch.randperm(80)[:40]).values
    t2d = torch.zeros(80, dtype=torch.bool)
    t2d[chosen] = True
    d.set_vocab_mapping(chosen - torch.arange(40), t2d)
    return d
