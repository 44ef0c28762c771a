"""`python -m speculative evaluate --config experiments/configs/speculative/eval_smollm2.yaml [k=v ...]`

For every benchmark turn: autoregressive decoding, then speculative decoding (the main EAGLE-3 method, then
every extra `methods` entry: EAGLE-3 trees, prompt lookup, the hybrid), on the same TargetRunner, back to
back (so all see the same machine load). Then optional sweeps over draft depth / tree size and the vLLM
baselines. Results are rewritten atomically after each benchmark, so an interrupted run keeps what it
finished. `make speculative-compare` runs the side-by-side configuration (eval_compare.yaml).
"""

from __future__ import annotations

import platform
import time
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import atomic_write_json, atomic_write_text
from runtime.config import config_from_cli
from runtime.logging import get_logger, progress
from speculative.decode import DecodeConfig, HybridDrafter, LookupDrafter, SpeculativeEngine, TargetRunner
from speculative.decode.eagle3_drafter import Eagle3Drafter
from speculative.evaluate.benchmarks import BenchItem, load_benchmark, load_prompt_file
from speculative.evaluate.config import MethodConfig, SpecEvalConfig
from speculative.evaluate.metrics import summarize
from speculative.evaluate.report import markdown_table

log = get_logger("speculative.evaluate")
MAX_PROMPT_TOKENS = 1536


def eos_ids(model: Any, tokenizer: Any) -> list[int]:
    ids = model.generation_config.eos_token_id
    ids = [ids] if isinstance(ids, int) else list(ids or [])
    for tok in ("<|im_end|>", tokenizer.eos_token):
        tid = tokenizer.convert_tokens_to_ids(tok) if tok else None
        if isinstance(tid, int) and tid >= 0 and tid not in ids:
            ids.append(tid)
    return ids


def build_engine(cfg: SpecEvalConfig, decode: DecodeConfig, draft_dir: str | None = None):
    """(engine, tokenizer) for the configured target and an exported EAGLE-3 draft."""
    from runtime.assets import load_model, load_tokenizer
    from speculative.export import load_exported_draft

    draft_dir = draft_dir or cfg.resolved_draft_dir()
    if not Path(draft_dir, "config.json").is_file():
        raise FileNotFoundError(f"no exported draft at {draft_dir}: run `make speculative-bundle` (or pass draft_dir=...)")
    target = load_model(cfg.target)
    tokenizer = load_tokenizer(cfg.target)
    draft = load_exported_draft(draft_dir, embed_weight=target.get_input_embeddings().weight.detach(),
                                device=target.device)
    if cfg.small_m_kernel and target.device.type == "cpu":
        # both the AR baseline and speculative decoding run on these layers: the comparison stays like for like
        from runtime.ops import use_small_m_linears

        use_small_m_linears(target)
        use_small_m_linears(draft)
    runner = TargetRunner(target, draft.config.aux_layer_ids)
    return SpeculativeEngine(runner, Eagle3Drafter(draft), decode, eos_ids(target, tokenizer)), tokenizer


def encode(tokenizer: Any, messages: list[dict[str, str]]) -> torch.Tensor:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return torch.tensor(tokenizer(text, add_special_tokens=False)["input_ids"])


def make_drafter(kind: str, draft: Any, decode: DecodeConfig):
    """eagle3: the exported draft alone; lookup: prompt lookup alone (no model); hybrid: both in one tree."""
    if kind == "eagle3":
        return Eagle3Drafter(draft)
    lookup = LookupDrafter(decode.lookup)
    return lookup if kind == "lookup" else HybridDrafter(Eagle3Drafter(draft), lookup)


def method_engines(methods: list[MethodConfig], main: SpeculativeEngine, eos: list[int]) -> dict[str, SpeculativeEngine]:
    """Engines of the extra methods: they share the main engine's TargetRunner (one target, one KV cache)."""
    out = {}
    for m in methods:
        decode = m.resolve(main.cfg)
        out[m.name] = SpeculativeEngine(main.target, make_drafter(m.drafter, main.drafter.draft, decode), decode, eos)
    return out


def draft_depth(engine: SpeculativeEngine) -> int:
    """The most drafted tokens one round can accept (per-position acceptance is reported up to it)."""
    cfg, drafter = engine.cfg, engine.drafter
    if isinstance(drafter, LookupDrafter):
        return cfg.lookup.k
    if isinstance(drafter, HybridDrafter):
        return max(cfg.depth, cfg.lookup.k)
    return cfg.depth


def history_accepted(engine: SpeculativeEngine) -> int | None:
    """Tokens accepted from cross-request lookup so far (None: the drafter has no lookup history)."""
    drafter = engine.drafter
    lookup = drafter if isinstance(drafter, LookupDrafter) else getattr(drafter, "lookup", None)
    return lookup.history_accepted if lookup is not None and lookup.history is not None else None


def warm_up(engine: SpeculativeEngine, extra: dict[str, SpeculativeEngine], ids: torch.Tensor, n: int = 16) -> None:
    """One short untimed run of every engine: first calls pay allocations and kernel set-up, not decoding."""
    engine.generate_autoregressive(ids, n)
    for eng in [engine, *extra.values()]:
        eng.generate(ids, n)


def run_items(engine: SpeculativeEngine, tokenizer: Any, items: list[BenchItem], desc: str,
              extra: dict[str, SpeculativeEngine] | None = None) -> dict[str, Any]:
    """AR, then the main speculative method, then each `extra` one, on each turn (later turns see the shared
    greedy answer to earlier ones). Returns the main method's summary; with `extra`, out["methods"] holds
    theirs, all measured against the same AR runs."""
    engines = {None: engine, **(extra or {})}
    spec: dict[str | None, list] = {k: [] for k in engines}
    mismatched = dict.fromkeys(engines, 0)
    ar, skipped, limit = [], 0, engine.cfg.max_new_tokens
    hist0 = {k: history_accepted(e) for k, e in engines.items()}
    for item in progress(items, desc=desc):
        messages: list[dict[str, str]] = []
        for turn in item.turns:
            messages.append({"role": "user", "content": turn})
            ids = encode(tokenizer, messages)
            if ids.numel() > MAX_PROMPT_TOKENS:
                skipped += 1
                break
            base = engine.generate_autoregressive(ids)
            for key, eng in engines.items():
                res = eng.generate(ids, limit)
                if eng.cfg.greedy and engine.cfg.greedy and res.token_ids != base.token_ids:
                    mismatched[key] += 1
                spec[key].append(res.stats)
            ar.append(base.stats)
            messages.append({"role": "assistant", "content": tokenizer.decode(base.token_ids, skip_special_tokens=True)})

    def summary(key: str | None) -> dict[str, Any]:
        eng = engines[key]
        out = summarize(spec[key], ar, draft_depth(eng))
        out["same_output_as_ar"] = None if not (eng.cfg.greedy and engine.cfg.greedy) else mismatched[key] == 0
        out["mismatched_turns"] = mismatched[key]
        out["skipped_too_long"] = skipped
        if hist0[key] is not None:  # of the accepted lookup tokens, those copied from earlier responses
            out["accepted_from_history"] = history_accepted(eng) - hist0[key]
        return out

    out = summary(None)
    if extra:
        out["methods"] = {k: summary(k) for k in extra}
    return out


def load_items(cfg: SpecEvalConfig) -> tuple[dict[str, list[BenchItem]], dict[str, Any]]:
    """Benchmark items (built-ins, then the user's prompt files), cut to `max_turns`; prompt-file summaries."""
    items: dict[str, list[BenchItem]] = {}
    files: dict[str, Any] = {}
    for bench, limit in cfg.benchmarks.items():
        if limit > 0:
            kw = {"train_window": cfg.sharegpt_train_window} if bench == "sharegpt" else {}
            items[bench] = load_benchmark(bench, limit, **kw)
    for name, pf in cfg.prompt_files.items():
        loaded = load_prompt_file(pf.path, pf.limit)
        items[name] = loaded.items
        files[name] = {"path": pf.path, **loaded.summary()}
    if cfg.max_turns:
        items = {b: [BenchItem(i.id, i.turns[: cfg.max_turns]) for i in its] for b, its in items.items()}
    return items, files


def evaluate(cfg: SpecEvalConfig) -> dict[str, Any]:
    import gc

    from runtime.device import set_threads
    from runtime.results import provenance

    threads = set_threads(cfg.threads)
    t_start = time.time()
    items_by_bench, prompt_files = load_items(cfg)  # bad prompt files fail before any model loads
    engine, tokenizer = build_engine(cfg, cfg.decode)
    extra = method_engines(cfg.methods, engine, eos_ids(engine.target.model, tokenizer))
    report: dict[str, Any] = {
        "experiment": cfg.json_path().stem,
        **provenance(config=cfg, seed=cfg.decode.seed if cfg.decode.seed is not None else 0),
        "draft_dir": cfg.resolved_draft_dir(),
        "env": {"threads": threads, "device": str(engine.target.device), "torch": torch.__version__,
                "machine": platform.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "engine": {}, "sweep": [], "vllm": None,
    }
    if prompt_files:
        report["prompt_files"] = prompt_files
    if extra:
        report["methods"] = {}
        report["method_info"] = {m.name: {"drafter": m.drafter, "decode": extra[m.name].cfg.model_dump()}
                                 for m in cfg.methods}

    def save() -> None:
        report["wall_time_s"] = time.time() - t_start
        atomic_write_json(cfg.json_path(), report)
        atomic_write_text(cfg.md_path(), markdown_table(report))

    first = next((its[0] for its in items_by_bench.values() if its), None)
    if cfg.warmup and first is not None:
        warm_up(engine, extra, encode(tokenizer, [{"role": "user", "content": first.turns[0]}]))
    for bench, items in items_by_bench.items():
        res = run_items(engine, tokenizer, items, bench, extra)
        methods = res.pop("methods", {})
        report["engine"][bench] = res
        if methods:
            report["methods"][bench] = methods
        log.info("%s: tau %.2f speed-up %.2fx%s", bench, res["tau"], res["speedup"],
                 "".join(f"; {k} tau {r['tau']:.2f} {r['speedup']:.2f}x" for k, r in methods.items()))
        save()
        wrong = [k for k, r in [("main", res), *methods.items()] if r["same_output_as_ar"] is False]
        if cfg.check_exact and wrong:
            raise RuntimeError(f"{bench}: speculative greedy output differs from autoregressive output ({wrong})")

    if cfg.sweep:
        sweep_items = [BenchItem(i.id, i.turns[:1]) for i in load_benchmark("mtbench", cfg.sweep_prompts)]
        for point in cfg.sweep:
            decode = cfg.decode.model_copy(update=point.model_dump())
            decode = DecodeConfig(**decode.model_dump())  # re-validate (chain forces topk=1)
            engine.cfg = decode
            res = run_items(engine, tokenizer, sweep_items, f"sweep {point.mode} d{point.depth}")
            report["sweep"].append({**point.model_dump(), "num_draft_tokens": decode.num_draft_tokens,
                                    "tau": res["tau"], "speedup": res["speedup"],
                                    "spec_tokens_per_s": res["spec_tokens_per_s"]})
            save()
        engine.cfg = cfg.decode

    if cfg.vllm.enabled:
        from speculative.evaluate.vllm_baselines import run_baselines

        del engine, extra  # free the HF copies before vLLM loads its own
        gc.collect()
        n = cfg.vllm.prompts_per_benchmark
        prompts = {b: [[{"role": "user", "content": i.turns[0]}] for i in (items if n is None else items[:n])]
                   for b, items in items_by_bench.items()}
        report["vllm"] = run_baselines(cfg.target, cfg.resolved_draft_dir(), prompts, cfg.decode.max_new_tokens,
                                       cfg.vllm)
        save()
    report["env"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    return report


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(SpecEvalConfig, argv, description=__doc__, example="draft_dir=/path benchmarks.mtbench=5")
    report = evaluate(cfg)
    print(markdown_table(report))
    return 0
