"""Assemble a (possibly distributed) training run: dist init -> data -> target -> vocab -> draft -> trainer.

target_kind: `hf` (online, single process or every rank its own copy), `offline` (shards, no target
forward at all) or `tp` (megatron TP target + TP-then-resplit). With world > 1 the draft is FSDP2-sharded.
Same seed, same data -> same examples, vocab, draft init and batch order as `speculative.train`.
"""

from __future__ import annotations

from pathlib import Path

from runtime.assets import load_tokenizer
from runtime.checkpoint import atomic_write_json
from runtime.device import parse_dtype, pick_device, seed_everything, set_threads
from runtime.distributed import init_distributed, init_tensor_parallel, is_main, world_size
from runtime.logging import get_logger
from speculative.offline.backend import OfflineTargetBackend
from speculative.parallel.config import DistTrainConfig
from speculative.parallel.fsdp import FSDPDraftTrainer
from speculative.target.backend import HFTargetBackend, TargetBackend
from speculative.train.build import assemble_draft, load_examples
from speculative.train.trainer import DraftTrainer
from speculative.train.validate import split_holdout

log = get_logger("speculative.parallel")


def build_target(cfg: DistTrainConfig) -> TargetBackend:
    device = pick_device(cfg.device)
    dtype = parse_dtype(cfg.target.dtype, device)
    if cfg.target_kind == "offline":
        return OfflineTargetBackend(cfg.offline_dir)
    if cfg.target_kind == "tp":
        # imported here: the TP target is built from transformers' Llama blocks, which offline runs skip
        from speculative.parallel.tp_target import ResplitTarget, TPTargetBackend

        init_tensor_parallel(cfg.parallel.tp, seed=cfg.seed)
        return ResplitTarget(TPTargetBackend(cfg.target.model, aux_layer_ids=cfg.target.aux_layer_ids, dtype=dtype,
                                             device=device))
    return HFTargetBackend.from_asset(cfg.target.model, aux_layer_ids=cfg.target.aux_layer_ids, device=device,
                                      dtype=dtype)


def build_dist_training(cfg: DistTrainConfig) -> DraftTrainer:
    init_distributed(cfg.parallel.backend)
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    target = build_target(cfg)
    # offline shards carry the tokenizer facts training needs; loading the HF tokenizer would cost ~300 MB
    stored = target.stored_tokenizer() if isinstance(target, OfflineTargetBackend) else None
    tokenizer = stored or load_tokenizer(cfg.target.model)
    if isinstance(target, OfflineTargetBackend):
        examples, skipped = target.examples(), target.manifest["skipped"]
    else:
        _, examples, skips = load_examples(cfg, tokenizer)
        skipped = dict(skips)
    examples, val_examples = split_holdout(examples, cfg.val.examples)
    draft, schedule, vocab_key = assemble_draft(cfg, target, examples, tokenizer)
    draft_cfg = draft.config
    if is_main():
        out = Path(cfg.out_dir)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / "data_report.json", {
            "examples": len(examples), "val_examples": len(val_examples), "skipped": skipped,
            "target_kind": cfg.target_kind, "world_size": world_size(),
            "tp": cfg.parallel.tp, "vocab_cache_key": vocab_key, "draft_vocab_size": draft_cfg.draft_vocab_size,
            "loss_tokens": sum(int(e.loss_mask.sum()) for e in examples)})
    log.info("%s target, world %d (tp %d): %d examples", cfg.target_kind, world_size(), cfg.parallel.tp, len(examples))
    if world_size() > 1 and cfg.parallel.fsdp:
        return FSDPDraftTrainer(cfg, target, draft, schedule, val_examples)
    if world_size() > 1:
        raise ValueError("world > 1 needs parallel.fsdp=true (plain data-parallel without sharding is not built)")
    return DraftTrainer(cfg, target, draft, schedule, val_examples)
