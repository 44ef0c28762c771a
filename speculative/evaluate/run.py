"""`python -m speculative.evaluate --config experiments/configs/specforge/eval_smollm2.yaml [k=v ...]`

For every benchmark turn: autoregressive decoding, then speculative decoding, on the same TargetRunner,
back to back (so both see the same machine load). Then optional sweeps over draft depth / tree size and
the vLLM baselines. Results are rewritten atomically after each benchmark, so an interrupted run keeps
what it finished.
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
from speculative.decode import DecodeConfig, SpeculativeEngine, TargetRunner
from speculative.decode.eagle3_drafter import Eagle3Drafter
from speculative.evaluate.benchmarks import BenchItem, load_benchmark
from speculative.evaluate.config import EvalConfig
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


def build_engine(cfg: EvalConfig, decode: DecodeConfig, draft_dir: str | None = None):
    """(engine, tokenizer) for the configured target and an exported EAGLE-3 draft."""
    from runtime.assets import load_model, load_tokenizer
    from speculative.export import load_exported_draft

    draft_dir = draft_dir or cfg.resolved_draft_dir()
    if not Path(draft_dir, "config.json").is_file():
        raise FileNotFoundError(f"no exported draft at {draft_dir}: run `make spec-bundle` (or pass draft_dir=...)")
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


def run_items(engine: SpeculativeEngine, tokenizer: Any, items: list[BenchItem], desc: str) -> dict[str, Any]:
    """AR then speculative on each turn; later turns see the (shared greedy) answer to earlier ones."""
    spec, ar, mismatched, skipped = [], [], 0, 0
    for item in progress(items, desc=desc):
        messages: list[dict[str, str]] = []
        for turn in item.turns:
            messages.append({"role": "user", "content": turn})
            ids = encode(tokenizer, messages)
            if ids.numel() > MAX_PROMPT_TOKENS:
                skipped += 1
                break
            base = engine.generate_autoregressive(ids)
            res = engine.generate(ids)
            if engine.cfg.greedy and res.token_ids != base.token_ids:
                mismatched += 1
            spec.append(res.stats)
            ar.append(base.stats)
            messages.append({"role": "assistant", "content": tokenizer.decode(base.token_ids, skip_special_tokens=True)})
    out = summarize(spec, ar, engine.cfg.depth)
    out["same_output_as_ar"] = None if not engine.cfg.greedy else mismatched == 0
    out["mismatched_turns"] = mismatched
    out["skipped_too_long"] = skipped
    return out


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    from runtime.device import set_threads
    from runtime.results import provenance

    threads = set_threads(cfg.threads)
    t_start = time.time()
    engine, tokenizer = build_engine(cfg, cfg.decode)
    report: dict[str, Any] = {
        "experiment": Path(cfg.out_json).stem,
        **provenance(config=cfg, seed=cfg.decode.seed if cfg.decode.seed is not None else 0),
        "draft_dir": cfg.resolved_draft_dir(),
        "env": {"threads": threads, "device": str(engine.target.device), "torch": torch.__version__,
                "machine": platform.machine(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())},
        "engine": {}, "sweep": [], "vllm": None,
    }

    def save() -> None:
        report["wall_time_s"] = time.time() - t_start
        atomic_write_json(cfg.out_json, report)
        atomic_write_text(cfg.out_md, markdown_table(report))

    items_by_bench = {}
    for bench, limit in cfg.benchmarks.items():
        kw = {"train_window": cfg.sharegpt_train_window} if bench == "sharegpt" else {}
        items_by_bench[bench] = load_benchmark(bench, limit, **kw)
        report["engine"][bench] = run_items(engine, tokenizer, items_by_bench[bench], bench)
        log.info("%s: tau %.2f speed-up %.2fx", bench, report["engine"][bench]["tau"], report["engine"][bench]["speedup"])
        save()
        if cfg.check_exact and report["engine"][bench]["same_output_as_ar"] is False:
            raise RuntimeError(f"{bench}: speculative greedy output differs from autoregressive output")

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

        del engine  # free the HF copies before vLLM loads its own
        prompts = {b: [[{"role": "user", "content": i.turns[0]}] for i in items[: cfg.vllm.prompts_per_benchmark]]
                   for b, items in items_by_bench.items()}
        report["vllm"] = run_baselines(cfg.target, cfg.resolved_draft_dir(), prompts, cfg.decode.max_new_tokens,
                                       cfg.vllm.num_speculative_tokens, list(cfg.vllm.methods))
        save()
    report["env"]["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    save()
    return report


def main(argv: list[str] | None = None) -> int:
    cfg = config_from_cli(EvalConfig, argv, description=__doc__, example="draft_dir=/path benchmarks.mtbench=5")
    report = evaluate(cfg)
    print(markdown_table(report))
    return 0
