"""Where decoding time goes: target forward latency vs the number of tokens verified at once (engine and
plain HF), and the cost of one linear layer at M = n rows (the CPU's small-M GEMM). Draft and verify
shares of real decoding are in the eval report (`time_split_s`, `round_cost_ar_steps`).
`python -m speculative.evaluate.profile` -> JSON.

The speculative arithmetic: speed-up ~= tau * t(1) / (t(n) + d * t_draft), with t(n) the target forward
over n tree tokens and d draft forwards per round. A CPU target is only cheap to verify with if t(8) is
close to t(1); this measures how close it is on this machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from runtime.checkpoint import atomic_write_json
from runtime.paths import results_dir
from runtime.results import with_provenance


def _median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


@torch.inference_mode()
def target_latency(model, context: int, sizes: list[int], repeats: int) -> dict[int, float]:
    """Median seconds of one cached forward over n new tokens after `context` cached tokens."""
    from speculative.decode.target import TargetRunner
    from speculative.decode.tree import chain_tree

    runner = TargetRunner(model)
    prompt = torch.randint(0, model.config.vocab_size, (context,), generator=torch.Generator().manual_seed(0))
    out = {}
    for n in sizes:
        runner.prefill(prompt, want_features=False)
        tree = chain_tree(1, list(range(2, n + 1)))
        mask = tree.ancestor_mask()

        def once(tree=tree, mask=mask):
            runner.verify(tree.tokens, tree.depths, mask, want_features=False)
            runner.commit([], tree.size)

        out[n] = _median_time(once, repeats)
    return out


@torch.inference_mode()
def raw_hf_latency(model, context: int, sizes: list[int], repeats: int) -> dict[int, float]:
    """The same forwards through plain HF (causal mask, no tree mask, no features): the floor."""
    from transformers import DynamicCache

    prompt = torch.randint(0, model.config.vocab_size, (1, context), generator=torch.Generator().manual_seed(0))
    out = {}
    for n in sizes:
        cache = DynamicCache(config=model.config)
        model(prompt, past_key_values=cache, use_cache=True)
        new = torch.randint(0, model.config.vocab_size, (1, n))

        def once(new=new, cache=cache):
            model(new, past_key_values=cache, use_cache=True)
            for layer in cache.layers:
                layer.keys, layer.values = layer.keys[..., :context, :], layer.values[..., :context, :]

        out[n] = _median_time(once, repeats)
    return out


@torch.inference_mode()
def linear_latency(model, sizes: list[int], repeats: int) -> dict[str, dict[int, float]]:
    """Median seconds of the target's own MLP up-projection and LM head for M = n rows: separates the
    cost of the CPU's small-M GEMM from everything the engine adds around it."""
    layers = {"mlp_up": model.model.layers[0].mlp.up_proj, "lm_head": model.get_output_embeddings()}
    out: dict[str, dict[int, float]] = {}
    for name, lin in layers.items():
        out[name] = {}
        for n in sizes:
            x = torch.randn(n, lin.in_features)
            out[name][n] = _median_time(lambda x=x, lin=lin: lin(x), repeats * 5)
    return out


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="smollm2-135m-instruct")
    ap.add_argument("--context", type=int, default=256)
    ap.add_argument("--sizes", default="1,2,4,8,16,32,64")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--out", default=str(results_dir() / "spec_profile.json"))
    args = ap.parse_args(argv)
    from runtime.assets import load_model
    from runtime.device import set_threads

    threads = set_threads()
    model = load_model(args.model, device="cpu")
    sizes = [int(s) for s in args.sizes.split(",")]
    engine = target_latency(model, args.context, sizes, args.repeats)
    raw = raw_hf_latency(model, args.context, sizes, args.repeats)
    linear = linear_latency(model, sizes, args.repeats)
    from runtime.ops import use_small_m_linears

    use_small_m_linears(model)  # the same forwards with every nn.Linear on the csrc small-M kernel
    engine_small_m = target_latency(model, args.context, sizes, args.repeats)
    report = {"model": args.model, "context": args.context, "threads": threads,
              "engine_verify_s": {str(k): v for k, v in engine.items()},
              "hf_forward_s": {str(k): v for k, v in raw.items()},
              "cost_ratio_vs_1": {str(k): engine[k] / engine[sizes[0]] for k in sizes},
              "engine_verify_small_m_kernel_s": {str(k): v for k, v in engine_small_m.items()},
              "small_m_cost_ratio_vs_torch_1": {str(k): engine_small_m[k] / engine[sizes[0]] for k in sizes},
              "linear_s": {name: {str(k): v for k, v in t.items()} for name, t in linear.items()}}
    atomic_write_json(args.out, with_provenance(report, config=vars(args)))
    print(json.dumps(report, indent=1))
    return report


if __name__ == "__main__":
    main()
