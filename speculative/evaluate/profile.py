"""Where decoding time goes: target forward latency vs the number of tokens verified at once (the engine's
fast backend, HF's forward with torch GEMMs, HF with every linear on the small-M kernel), the AR decoding
rate, a per-layer / per-part breakdown of the fast forward, the top ops by self CPU time, and the cost of
one linear at M = n rows (the CPU's small-M GEMM vs the csrc kernel), and the bandwidth ceiling of AR
decoding on this machine (measured read rate / weight bytes per token). Draft and verify shares of real
decoding are in the eval report (`time_split_s`, `round_cost_ar_steps`).
`python -m speculative profile [sizes=[1,4] context=16 ...]` -> JSON (`out`, default
<results>/speculative_profile.json).

The speculative arithmetic: speed-up ~= tau * t(1) / (t(n) + d * t_draft), with t(n) the target forward
over n tree tokens and d draft forwards per round. A CPU target is only cheap to verify with if t(8) is
close to t(1); this measures how close it is on this machine.
"""

from __future__ import annotations

import contextlib
import copy
import json
import statistics
import time
from collections import defaultdict
from typing import Literal

import torch
from pydantic import Field

from runtime.checkpoint import atomic_write_json
from runtime.config import StrictModel, config_from_cli
from runtime.paths import results_dir
from runtime.results import with_provenance

BACKENDS = ("fast", "hf", "hf_small_m")  # hf_small_m: HF's forward with use_small_m_linears
Backend = Literal["fast", "hf", "hf_small_m"]


class ProfileConfig(StrictModel):
    model: str = "smollm2-135m-instruct"
    context: int = Field(256, ge=1)  # cached tokens before the measured forward
    sizes: list[int] = Field(default_factory=lambda: [1, 2, 4, 8, 16, 32, 64], min_length=1)  # tokens verified at once
    repeats: int = Field(10, ge=1)
    backends: list[Backend] = Field(default_factory=lambda: list(BACKENDS), min_length=1)  # the first is the engine's
    ar_tokens: int = Field(64, ge=1)  # tokens of greedy AR decoding timed per backend
    out: str | None = None  # None: <results>/speculative_profile.json


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _prompt(model, context: int) -> torch.Tensor:
    return torch.randint(0, model.config.vocab_size, (context,), generator=torch.Generator().manual_seed(0))


def _verify_fn(runner, n: int):
    """One cached forward over an n-token chain tree, then the cache rolled back: repeatable."""
    from speculative.decode.tree import chain_tree

    tree = chain_tree(1, list(range(2, n + 1)))
    mask = tree.ancestor_mask()

    def once():
        runner.verify(tree.tokens, tree.depths, mask, want_features=False)
        runner.commit([], tree.size)

    return once


@torch.inference_mode()
def target_latency(model, context: int, sizes: list[int], repeats: int, backend: str = "fast") -> dict[int, float]:
    """Median seconds of one cached forward over n new tokens after `context` cached tokens."""
    runner = _runner(model, backend)
    out = {}
    for n in sizes:
        runner.prefill(_prompt(runner.model, context), want_features=False)
        out[n] = _median_time(_verify_fn(runner, n), repeats)
    return out


def raw_hf_latency(model, context: int, sizes: list[int], repeats: int) -> dict[int, float]:
    """`target_latency` through HF's own forward and DynamicCache (torch GEMMs)."""
    return target_latency(model, context, sizes, repeats, backend="hf")


@torch.inference_mode()
def ar_tokens_per_s(model, context: int, new_tokens: int, backend: str = "fast") -> float:
    """Greedy decoding rate through `TargetRunner.step` (what `generate_autoregressive` runs per token)."""
    runner = _runner(model, backend)
    runner.prefill(_prompt(runner.model, context), want_features=False)
    tok = 1
    runner.step(tok)  # warm-up
    t0 = time.perf_counter()
    for _ in range(new_tokens):
        tok = int(runner.step(tok).logits[-1].argmax())
    return new_tokens / (time.perf_counter() - t0)


@contextlib.contextmanager
def _timed_ops(decoder):
    """Wrap the runtime.ops calls of `llama_fast` with timers labelled by the weight they use (so by layer
    and part); attention is charged to the layer of the QKV projection just before it."""
    import speculative.decode.llama_fast as fast

    names = {id(decoder.norm): ("final_norm", None), id(decoder.head): ("lm_head", None)}
    for i, layer in enumerate(decoder.layers):
        for part in ("in_norm", "qkv", "o", "post_norm", "gate_up", "down"):
            names[id(getattr(layer, part))] = (part, i)
    times: dict[tuple[str, int | None], float] = defaultdict(float)
    current = [None]
    originals = {name: getattr(fast, name) for name in ("decode_linear", "decode_swiglu", "decode_rmsnorm_residual",
                                                        "decode_attention")}

    def wrap(name, fn):
        def timed(*args, **kwargs):
            if name == "decode_attention":
                label = ("attention", current[0])
            else:
                label = names.get(id(args[2] if name == "decode_rmsnorm_residual" else args[1]), (name, None))
                current[0] = label[1]
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            times[label] += time.perf_counter() - t0
            return out
        return timed

    for name, fn in originals.items():
        setattr(fast, name, wrap(name, fn))
    try:
        yield times
    finally:
        for name, fn in originals.items():
            setattr(fast, name, fn)


@torch.inference_mode()
def breakdown(model, context: int, n: int, repeats: int) -> dict:
    """Per part (summed over layers) and per layer ms of one fast forward over n tokens; `glue_ms` is the
    rest (Python, embedding, feature/mask handling); the top ops by self CPU time from torch.profiler."""
    runner = _runner(model, "fast")
    runner.prefill(_prompt(runner.model, context), want_features=False)
    once = _verify_fn(runner, n)
    once()
    wall = _median_time(once, repeats)
    with _timed_ops(runner.fast) as times:
        for _ in range(repeats):
            once()
    per_part: dict[str, float] = defaultdict(float)
    per_layer = [0.0] * len(runner.fast.layers)
    for (part, layer), t in times.items():
        per_part[part] += t * 1e3 / repeats
        if layer is not None:
            per_layer[layer] += t * 1e3 / repeats
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(repeats):
            once()
    ops = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)[:15]
    return {"tokens": n, "wall_ms": wall * 1e3,
            "per_part_ms": {k: round(v, 4) for k, v in sorted(per_part.items(), key=lambda kv: -kv[1])},
            "glue_ms": round(wall * 1e3 - sum(per_part.values()), 4),
            "per_layer_ms": [round(v, 4) for v in per_layer],
            "top_ops": {e.key: {"self_cpu_ms_per_forward": round(e.self_cpu_time_total / 1e3 / repeats, 4),
                                "calls_per_forward": e.count / repeats} for e in ops}}


@torch.inference_mode()
def linear_latency(model, sizes: list[int], repeats: int, impl: str = "torch") -> dict[str, dict[int, float]]:
    """Median seconds of the target's own MLP up-projection and LM head for M = n rows with torch's GEMM
    ("torch") or the csrc small-M kernel ("small_m_kernel"): the small-M GEMM cost apart from the rest."""
    from runtime.ops import decode_linear

    fn = {"torch": torch.nn.functional.linear, "small_m_kernel": decode_linear}[impl]
    layers = {"mlp_up": model.model.layers[0].mlp.up_proj.weight, "lm_head": model.get_output_embeddings().weight}
    return {name: {n: _median_time(lambda x=torch.randn(n, w.shape[1]), w=w: fn(x, w), repeats * 5) for n in sizes}
            for name, w in layers.items()}


def memory_read_gbps(mib: int = 512, repeats: int = 7) -> float:
    """Sustained memory read rate of this machine at the current thread count: median GB/s of summing an fp32
    buffer 16x the size of a large L3 (so it streams from DRAM, the way decoding reads the weights)."""
    buf = torch.ones(mib * 2 ** 20 // 4)
    return buf.numel() * 4 / _median_time(buf.sum, repeats) / 1e9


def streamed_weight_bytes(model) -> int:
    """Bytes of weights one decode step reads: every parameter once (a tied LM head counts once), except an
    untied input embedding, of which a step reads one row."""
    embed, head = model.get_input_embeddings().weight, model.get_output_embeddings().weight
    unique = {p.data_ptr(): p for p in model.parameters()}
    if embed.data_ptr() != head.data_ptr():
        unique.pop(embed.data_ptr(), None)
    return sum(p.numel() * p.element_size() for p in unique.values())


def ar_ceiling(model) -> dict:
    """The bandwidth ceiling of batch-1 AR decoding: read rate / bytes per token (compute and attention free)."""
    gbps, nbytes = memory_read_gbps(), streamed_weight_bytes(model)
    return {"memory_read_gbps": round(gbps, 2), "weight_bytes_per_token": nbytes,
            "ar_ceiling_tokens_per_s": round(gbps * 1e9 / nbytes, 2)}


def _runner(model, backend: str):
    from runtime.ops import use_small_m_linears
    from speculative.decode.target import TargetRunner

    if backend == "hf_small_m":
        model = copy.deepcopy(model)
        use_small_m_linears(model)
    return TargetRunner(model, backend="fast" if backend == "fast" else "hf")


def profile(cfg: ProfileConfig) -> dict:
    from runtime.assets import load_model
    from runtime.device import set_threads

    threads = set_threads()
    model = load_model(cfg.model, device="cpu")
    sizes, backends = cfg.sizes, list(cfg.backends)
    verify = {b: target_latency(model, cfg.context, sizes, cfg.repeats, b) for b in backends}
    ar = {b: ar_tokens_per_s(model, cfg.context, cfg.ar_tokens, b) for b in backends}
    small = [s for s in sizes if s <= 8]
    parts = {str(n): breakdown(model, cfg.context, n, cfg.repeats) for n in sorted({min(small), max(small)})} \
        if "fast" in backends and small else {}
    base = backends[0]

    def keyed(d):
        return {str(k): v for k, v in d.items()}

    ceiling = ar_ceiling(model)
    ceiling["ar_share_of_ceiling"] = {b: round(v / ceiling["ar_ceiling_tokens_per_s"], 3) for b, v in ar.items()}
    report = {"model": cfg.model, "context": cfg.context, "threads": threads, "backends": backends,
              "bandwidth": ceiling,
              # the engine's own runner (`backends[0]`, default fast): the keys earlier reports used
              "engine_verify_s": keyed(verify[base]),
              "cost_ratio_vs_1": {str(k): verify[base][k] / verify[base][sizes[0]] for k in sizes},
              "verify_s": {b: keyed(v) for b, v in verify.items()},
              "cost_ratio_vs_1_by_backend": {b: {str(k): v[k] / v[sizes[0]] for k in sizes} for b, v in verify.items()},
              "ar_tokens_per_s": ar,
              "breakdown_fast": parts,
              "linear_s": {impl: {name: keyed(t) for name, t in linear_latency(model, sizes, cfg.repeats, impl).items()}
                           for impl in ("torch", "small_m_kernel")}}
    atomic_write_json(cfg.out or results_dir() / "speculative_profile.json", with_provenance(report, config=cfg))
    return report


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(ProfileConfig, argv, description=__doc__.splitlines()[0], example="sizes=[1,4] context=16")
    print(json.dumps(profile(cfg), indent=1))
    return 0
