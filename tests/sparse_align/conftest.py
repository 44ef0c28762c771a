"""Shared fixtures: a tiny random Llama with the real SmolLM2 tokenizer (fast), and the real SmolLM2."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="session")
def tokenizer(smollm2_tokenizer):
    return smollm2_tokenizer


@pytest.fixture(scope="session")
def tiny_model(tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, eos_token_id=2, bos_token_id=1,
                      pad_token_id=2)
    model = LlamaForCausalLM(cfg).eval()
    model.generation_config.eos_token_id = 2
    return model


@pytest.fixture(scope="session")
def smollm2_model(smollm2):
    return smollm2[0].eval()  # the top-level fixture is (model, tokenizer)


@pytest.fixture(scope="session")
def tiny_value_model(tiny_model):
    from sparse_align.config import ValueModelConfig
    from sparse_align.value.model import ValueModel

    torch.manual_seed(1)
    vm = ValueModel.build(ValueModelConfig(head_hidden=16), backbone=tiny_model)
    with torch.no_grad():  # a loud head, so steering visibly changes the argmax
        for p in vm.head.parameters():
            p.mul_(50.0)
    return vm.eval()


class VowelReward:
    """A tiny lexicon-style teacher: the share of vowels in the response (varies with every token, so
    candidate rankings and the exact guide are exercised on random tiny models)."""

    name = "vowels"

    def score(self, prompts, responses):
        assert len(prompts) == len(responses)
        return [sum(c in "aeiouAEIOU" for c in r) / (len(r) + 1) for r in responses]


@pytest.fixture(scope="session")
def vowel_reward():
    return VowelReward()
