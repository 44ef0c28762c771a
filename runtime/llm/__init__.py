"""LLM backends behind one interface: HF local, vLLM in-process, OpenAI-compatible HTTP.

    from runtime.llm import make_backend, SamplingParams
    llm = make_backend("hf")                      # embedded SmolLM2
    llm = make_backend("vllm", model="smollm2-135m-instruct")
    llm = make_backend("openai", model="qwen", base_url="http://127.0.0.1:8000/v1")
    llm.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_new_tokens=32))
"""

from __future__ import annotations

from typing import Any

from runtime.llm.base import (
    BackendCapabilityError,
    Generation,
    LLMBackend,
    Message,
    Prompt,
    SamplingParams,
    TokenLogprobs,
)

BACKENDS = ("hf", "vllm", "openai")


def make_backend(kind: str = "hf", model: str | None = None, **kw: Any) -> LLMBackend:
    """Build a backend by name; `model` is an asset name, a local HF folder, or the served model name."""
    if kind == "hf":
        from runtime.llm.hf import HFBackend

        return HFBackend(model or "smollm2-135m-instruct", **kw)
    if kind == "vllm":
        from runtime.llm.vllm_backend import VLLMBackend

        return VLLMBackend(model or "smollm2-135m-instruct", **kw)
    if kind == "openai":
        from runtime.llm.openai_http import OpenAIHTTPBackend

        if not model:
            raise ValueError("the openai backend needs the served model name (model=...)")
        return OpenAIHTTPBackend(model, **kw)
    raise ValueError(f"unknown backend '{kind}'; choose one of {BACKENDS}")


__all__ = ["BACKENDS", "BackendCapabilityError", "Generation", "LLMBackend", "Message", "Prompt",
           "SamplingParams", "TokenLogprobs", "make_backend"]
