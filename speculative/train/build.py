"""Assemble a training run from its config: data -> target -> vocab map -> draft -> batch schedule."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from runtime.assets import load_tokenizer
from runtime.checkpoint import atomic_write_json
from runtime.device import parse_dtype, pick_device, seed_everything, set_threads
from runtime.logging import get_logger
from speculative.data.dataset import BatchSchedule, cached_tokenize
from speculative.data.records import load_conversations
from speculative.data.vocab import cached_vocab_mapping
from speculative.model.draft import Eagle3Draft, Eagle3DraftConfig
from speculative.target.backend import HFTargetBackend, TargetBackend
from speculative.train.config import DraftTrainConfig
from speculative.train.validate import split_holdout

log = get_logger("speculative.train")


BF16_PAD_MULTIPLE = 64  # sequence-length bucket under precision=bf16 (see assemble_draft)


@dataclass
class TrainingSetup:
    target: HFTargetBackend
    draft: Eagle3Draft
    schedule: BatchSchedule
    tokenizer: Any
    report: dict[str, Any]
    val_examples: list[Any]  # held out (cfg.val.examples), never in the schedule


def load_examples(cfg: DraftTrainConfig, tokenizer: Any) -> tuple[list[Any], list[Any], Any]:
    """Conversations -> tokenized examples with loss masks (cached); skips are counted by reason."""
    convs, skips = load_conversations(cfg.data.source, limit=cfg.data.limit)
    examples = cached_tokenize(tokenizer, convs, max_length=cfg.data.max_length,
                               last_turn_only=cfg.data.last_turn_only, skips=skips)
    return convs, examples, skips


def assemble_draft(cfg: DraftTrainConfig, target: TargetBackend, examples: list[Any],
                   tokenizer: Any) -> tuple[Eagle3Draft, BatchSchedule, str]:
    """Vocab map -> draft (initialised from `cfg.seed`) -> batch schedule; shared by every training mode."""
    d2t, t2d, vocab_key = cached_vocab_mapping(examples, tokenizer, target.config.vocab_size,
                                               cfg.data.draft_vocab_size)
    draft_cfg = Eagle3DraftConfig.from_target(target.config, cfg.data.draft_vocab_size, target.aux_layer_ids,
                                              cfg.draft_intermediate_size)
    seed_everything(cfg.seed)  # the draft init must not depend on how much data loading consumed
    if cfg.precision == "bf16" and hasattr(target, "store_embedding_as"):
        target.store_embedding_as(torch.bfloat16)  # offline: the shared frozen table at half size
    embed = target.embedding_weight().cpu()
    draft = Eagle3Draft(draft_cfg, embed_weight=embed if cfg.precision == "bf16" else embed.float())
    draft.set_vocab_mapping(d2t, t2d)
    if cfg.head_init == "target":
        draft.init_head_from_target(*target_output_side(getattr(target, "manifest", {}).get("target_model")
                                                        or cfg.target.model))
    # bf16 on CPU: oneDNN JIT-compiles (and keeps) one AMX kernel per GEMM shape; lengths rounded up to 64
    # let a run reuse ~8 shapes instead of growing ~25 MB of kernels per step (measured at 512 tokens)
    schedule = BatchSchedule(examples, cfg.optim.batch_size, cfg.seed,
                             pad_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
                             pad_multiple=BF16_PAD_MULTIPLE if cfg.precision == "bf16" else 1)
    if cfg.aux_norm_batches:
        draft.set_aux_scale(estimate_aux_scale(target, schedule, cfg.aux_norm_batches))
    if cfg.init_from:
        init_from_export(draft, cfg.init_from)
    return draft, schedule, vocab_key


def target_output_side(model: str) -> tuple[torch.Tensor, torch.Tensor]:
    """(lm_head [V, H], final norm [H]) of the target checkpoint, read from its files (any backend)."""
    from transformers import AutoConfig

    from runtime.assets.models import model_dir
    from speculative.parallel.hf_weights import HFWeights

    path = model_dir(model)
    weights = HFWeights(path)  # lm_head() falls back to the embedding when the checkpoint has no head
    tied = bool(getattr(AutoConfig.from_pretrained(str(path)), "tie_word_embeddings", False))
    return weights.lm_head(tied).float(), weights.get("model.norm.weight").float()


def init_from_export(draft: Eagle3Draft, path: str) -> None:
    """Start from an exported draft (e.g. the shipped one, when the checkpoints are gone): its weights and
    vocab mapping; fc is un-folded by this run's aux_scale so the function is unchanged. A checkpoint in
    out_dir, when there is one, still wins (the trainer resumes from it afterwards)."""
    from speculative.export import load_exported_draft

    src = load_exported_draft(path)
    if src.config != draft.config.model_copy(update={"draft_vocab_size": src.config.draft_vocab_size}):
        raise ValueError(f"init_from {path}: its architecture differs from this run's draft")
    if src.config.draft_vocab_size != draft.config.draft_vocab_size:
        raise ValueError(f"init_from {path}: draft vocab {src.config.draft_vocab_size} != "
                         f"data.draft_vocab_size {draft.config.draft_vocab_size}")
    weights = src.export_state_dict()
    weights["fc.weight"] = weights["fc.weight"] / draft.aux_scale[None, :]
    weights["aux_scale"] = draft.aux_scale.clone()
    draft.set_vocab_mapping(weights["d2t"], weights["t2d"])
    draft.load_state_dict(weights, strict=False)
    log.info("initialised the draft from %s", path)


@torch.no_grad()
def estimate_aux_scale(target: TargetBackend, schedule: BatchSchedule, n_batches: int) -> torch.Tensor:
    """1 / RMS of each aux layer's residual stream over the first `n_batches` batches, repeated over its H
    channels: SmolLM2's layers 2 / 15 / 27 differ ~10x in RMS, so unscaled the deepest one dominates fc.
    Position 0 is left out (the first token's residual is ~1000x larger everywhere: an attention sink)."""
    h = target.config.hidden_size
    sq, count = torch.zeros(len(target.aux_layer_ids), dtype=torch.float64), 0
    device = target.embedding_weight().device
    no_vocab = torch.zeros(target.config.vocab_size, dtype=torch.bool, device=device)
    for i in range(min(n_batches, schedule.batches_per_epoch)):
        batch = schedule.batch(i).to(device)
        aux = target.forward(batch.input_ids, batch.attention_mask, no_vocab).aux_hidden.float()
        rows = batch.attention_mask.clone()
        rows[:, 0] = False
        per_layer = aux[rows].view(-1, len(target.aux_layer_ids), h)  # [N, layers, H]
        sq += per_layer.double().pow(2).mean(-1).sum(0).cpu()
        count += per_layer.shape[0]
    if not count:
        raise ValueError("no tokens to estimate the aux-state scale from")
    return (count / sq).sqrt().float().repeat_interleave(h)


def build_training(cfg: DraftTrainConfig) -> TrainingSetup:
    set_threads(cfg.threads)
    seed_everything(cfg.seed)
    device = pick_device(cfg.device)
    tokenizer = load_tokenizer(cfg.target.model)
    convs, examples, skips = load_examples(cfg, tokenizer)
    examples, val_examples = split_holdout(examples, cfg.val.examples)
    target = HFTargetBackend.from_asset(cfg.target.model, aux_layer_ids=cfg.target.aux_layer_ids, device=device,
                                        dtype=parse_dtype(cfg.target.dtype, device))
    draft, schedule, vocab_key = assemble_draft(cfg, target, examples, tokenizer)
    draft_cfg = draft.config
    n_loss = sum(int(e.loss_mask.sum()) for e in examples)
    report = {"conversations": len(convs), "examples": len(examples), "val_examples": len(val_examples),
              "skipped": dict(skips), "skipped_total": skips.total, "loss_tokens": n_loss,
              "tokens": sum(len(e.input_ids) for e in examples), "vocab_cache_key": vocab_key,
              "draft_vocab_size": draft_cfg.draft_vocab_size, "aux_layer_ids": draft_cfg.aux_layer_ids,
              "draft_trainable_params": sum(p.numel() for p in draft.parameters() if p.requires_grad)}
    out = Path(cfg.out_dir)
    atomic_write_json(out / "data_report.json", report)
    log.info("data: %d examples (%d skipped: %s), %d loss tokens; draft vocab %d", len(examples), skips.total,
             dict(skips), n_loss, draft_cfg.draft_vocab_size)
    return TrainingSetup(target, draft, schedule, tokenizer, report, val_examples)
