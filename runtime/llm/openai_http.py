"""Any OpenAI-compatible HTTP endpoint (vLLM serve, SGLang, llama.cpp server, hosted APIs)."""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import Any

import httpx

from runtime.llm.base import (
    BackendCapabilityError,
    Generation,
    LLMBackend,
    Prompt,
    SamplingParams,
    TokenLogprobs,
    validate_messages,
)


class OpenAIHTTPError(RuntimeError):
    pass


class OpenAIHTTPBackend(LLMBackend):
    name = "openai"

    def __init__(self, model: str, base_url: str | None = None, *, api_key: str | None = None,
                 timeout: float = 120.0, max_retries: int = 3, tokenizer: Any = None):
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ValueError("OpenAIHTTPBackend needs base_url (or $OPENAI_BASE_URL), e.g. http://127.0.0.1:8000/v1")
        self.model = model
        self.base_url = base_url.rstrip("/")
        key = api_key or os.environ.get("OPENAI_API_KEY", "EMPTY")
        self.client = httpx.Client(timeout=timeout, headers={"Authorization": f"Bearer {key}"})
        self.max_retries = max_retries
        self._tok = tokenizer

    @property
    def tokenizer(self) -> Any:
        if self._tok is None:
            raise BackendCapabilityError("this HTTP backend was created without a tokenizer")
        return self._tok

    def _post(self, path: str, payload: dict[str, Any]) -> dict[str, Any]:
        delay = 0.5
        for attempt in range(self.max_retries + 1):
            try:
                r = self.client.post(f"{self.base_url}{path}", json=payload)
            except httpx.TransportError as err:
                if attempt == self.max_retries:
                    raise OpenAIHTTPError(f"POST {path} failed: {err}") from err
            else:
                if r.status_code < 400:
                    return r.json()
                if r.status_code < 500 and r.status_code != 429:
                    raise OpenAIHTTPError(f"POST {path} -> HTTP {r.status_code}: {r.text[:500]}")
                if attempt == self.max_retries:
                    raise OpenAIHTTPError(f"POST {path} -> HTTP {r.status_code} after retries: {r.text[:500]}")
            time.sleep(delay)
            delay *= 2
        raise AssertionError("unreachable")

    def _sampling(self, params: SamplingParams) -> dict[str, Any]:
        kw: dict[str, Any] = {"model": self.model, "max_tokens": params.max_new_tokens,
                              "temperature": params.temperature, "top_p": params.top_p}
        if params.stop:
            kw["stop"] = list(params.stop)
        if params.seed is not None:
            kw["seed"] = params.seed
        if params.top_k:
            kw["top_k"] = params.top_k  # vLLM / SGLang extension
        if params.json_schema is not None:  # OpenAI structured outputs; vLLM / SGLang accept it on both routes
            kw["response_format"] = {"type": "json_schema",
                                     "json_schema": {"name": "output", "schema": params.schema()}}
        return kw

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None) -> list[Generation]:
        params = params or SamplingParams()
        out = []
        for p in prompts:
            if isinstance(p, str):
                data = self._post("/completions", {**self._sampling(params), "prompt": p})
                choice = data["choices"][0]
                text = choice.get("text", "")
            else:
                data = self._post("/chat/completions", {**self._sampling(params), "messages": validate_messages(p)})
                choice = data["choices"][0]
                text = (choice.get("message") or {}).get("content") or ""
            usage = data.get("usage") or {}
            out.append(Generation(text=text, finish_reason="stop" if choice.get("finish_reason") == "stop" else "length",
                                  prompt_tokens=int(usage.get("prompt_tokens", 0))))
        return out

    def token_logprobs(self, texts: Sequence[str]) -> list[TokenLogprobs]:
        """Prompt log-probs through /completions with echo (vLLM, llama.cpp and legacy OpenAI support it)."""
        out = []
        for t in texts:
            data = self._post("/completions", {"model": self.model, "prompt": t, "max_tokens": 1, "echo": True,
                                               "logprobs": 0, "temperature": 0.0})
            lp = data["choices"][0].get("logprobs") or {}
            token_lps = lp.get("token_logprobs")
            if token_lps is None:
                raise BackendCapabilityError("endpoint returned no prompt logprobs (echo unsupported)")
            # echo returns prompt tokens then the generated one; the first prompt token has None
            n_gen = 1
            prompt_lps = token_lps[: len(token_lps) - n_gen]
            out.append(TokenLogprobs(token_ids=[], logprobs=[float(x) for x in prompt_lps[1:]]))
        return out

    def render(self, prompt: Prompt) -> str:
        if isinstance(prompt, str) or self._tok is not None:
            return super().render(prompt)
        raise BackendCapabilityError("rendering chat prompts needs a tokenizer; send them through generate()")

    def close(self) -> None:
        self.client.close()
