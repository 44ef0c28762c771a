"""The draft trainer: AdamW + cosine/warmup, grad accumulation and clipping, atomic resumable checkpoints.

A checkpoint (every `ckpt_every` optimizer steps, rotated) holds the draft weights (incl. d2t/t2d),
optimizer, scheduler, RNG states and the batch position; `BatchSchedule` replays batches from that
position, so a run killed with SIGKILL and restarted continues the same loss curve. Metrics rows
written after the last checkpoint are dropped on resume (those steps are recomputed).
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path
from typing import Any

import torch

from runtime.checkpoint import (
    CheckpointManager,
    atomic_write_json,
    atomic_write_text,
    rescale_base_lr,
    rng_state,
    set_rng_state,
)
from runtime.config import check_resume_config, dump_config
from runtime.device import pick_device, release_free_host_memory
from runtime.distributed import is_main
from runtime.logging import MetricsWriter, get_logger, progress, read_jsonl
from speculative.data.dataset import BatchSchedule, Example
from speculative.model.draft import Eagle3Draft
from speculative.target.backend import TargetBackend
from speculative.train.config import DraftTrainConfig
from speculative.train.ttt import ttt_unroll
from speculative.train.validate import validate

log = get_logger("speculative.train")

# settings a resumed run may change (applied); any other change is refused by name
RESUMABLE = ("max_steps", "log_every", "ckpt_every", "keep_ckpts", "tensorboard", "export", "throttle_s", "threads",
             "device", "attn_impl", "precision", "recompute_ttt", "init_from", "out_dir", "offline_dir", "optim.lr", "optim.warmup_steps",
             "optim.min_lr_ratio", "optim.max_grad_norm", "optim.weight_decay", "optim.betas", "loss_decay",
             "val.every", "val.batch_size", "head_init")


def cosine_schedule(optimizer: torch.optim.Optimizer, warmup: int, total: int, min_ratio: float = 0.0):
    """Linear warm-up, then cosine from 1 to `min_ratio` at step `total` (the whole planned run)."""
    def factor(step: int) -> float:
        if step < warmup:
            return step / max(1, warmup)  # as transformers' get_cosine_schedule_with_warmup
        progress = min(1.0, (step - warmup) / max(1, total - warmup))
        return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def with_defaults(stored: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """`stored` with the keys it lacks taken from `defaults`, recursively."""
    out = dict(stored)
    for key, value in defaults.items():
        if key not in out:
            out[key] = value
        elif isinstance(value, dict) and isinstance(out[key], dict):
            out[key] = with_defaults(out[key], value)
    return out


class DraftTrainer:
    def __init__(self, cfg: DraftTrainConfig, target: TargetBackend, draft: Eagle3Draft, schedule: BatchSchedule,
                 val_examples: list[Example] | None = None):
        self.cfg, self.target, self.draft, self.schedule = cfg, target, draft, schedule
        self.val_examples = val_examples or []
        self.device = pick_device(cfg.device)
        self.draft.to(self.device)
        params = [p for p in draft.parameters() if p.requires_grad]
        o = cfg.optim
        self.optimizer = torch.optim.AdamW(params, lr=o.lr, betas=o.betas, weight_decay=o.weight_decay,
                                           fused=self.fused_optimizer() or None)
        self.scheduler = cosine_schedule(self.optimizer, min(o.warmup_steps, cfg.max_steps), cfg.max_steps,
                                         o.min_lr_ratio)
        self.out = Path(cfg.out_dir)
        self.ckpts = CheckpointManager(self.out / "checkpoints", keep=cfg.keep_ckpts)
        self.attn_impl = cfg.attn_impl if cfg.attn_impl != "auto" else ("flex" if self.device.type == "cuda" else "sdpa")
        self.step = 0  # optimizer steps done

    def fused_optimizer(self) -> bool:
        """AdamW's fused kernel (one pass per parameter): the foreach default builds whole-model temporaries,
        ~+100 MB at the step for SmolLM2's 32k-vocab draft head. Plain tensors only (FSDP2 overrides)."""
        return self.device.type in ("cpu", "cuda")

    # ------------------------------------------------------------------ checkpoints
    def save(self) -> None:
        state = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                 "rng": rng_state(), "step": self.step, "position": self.step * self.cfg.optim.grad_accum,
                 "config": self.cfg.model_dump(mode="json")}
        self.ckpts.save(self.step, tensors={"draft": self.draft.trainable_state_dict()}, state=state)

    def maybe_resume(self) -> bool:
        ck = self.ckpts.load(map_location="cpu")
        if ck is None:
            return False
        weights = ck.tensors["draft"]
        if not (torch.equal(weights["d2t"], self.draft.d2t.cpu()) and torch.equal(weights["t2d"], self.draft.t2d.cpu())):
            raise RuntimeError(f"checkpoint {ck.path} was trained with another draft vocabulary (data or tokenizer "
                               "changed); use a new out_dir")
        self.draft.load_state_dict(weights, strict=False)
        self.optimizer.load_state_dict(ck.state["optimizer"])
        self.scheduler.load_state_dict(ck.state["scheduler"])
        self.apply_resume_config(ck)
        set_rng_state(ck.state["rng"])
        self.step = int(ck.state["step"])
        self._drop_metrics_after(self.step)
        log.info("resumed from %s (step %d)", ck.path, self.step)
        return True

    def apply_resume_config(self, ck: Any) -> None:
        """A setting changed since the checkpoint is applied (lr, schedule, logging...) or refused by name
        (data, target, seed, ttt, batch shape: the run would no longer be the one it resumes); never
        recorded in config.yaml and silently ignored. Corrupt newer checkpoints skipped are named."""
        for why in getattr(ck, "skipped", []):
            log.warning("skipped a corrupt checkpoint: %s", why)
        if "config" not in ck.state:  # written before configs were stored
            return
        # a setting added after the checkpoint was written counts at its default (defaults keep old behaviour)
        stored = with_defaults(ck.state["config"], type(self.cfg)().model_dump(mode="json"))
        changes = check_resume_config(stored, self.cfg, may_change=RESUMABLE, source=str(ck.path))
        if "optim.lr" in changes:
            rescale_base_lr(self.optimizer, self.scheduler, self.cfg.optim.lr)
        for group in self.optimizer.param_groups:  # the optimizer state brought back the old values
            group["weight_decay"], group["betas"] = self.cfg.optim.weight_decay, tuple(self.cfg.optim.betas)
        for key, (old, new) in changes.items():
            log.info("resume: %s %r -> %r applied", key, old, new)

    def write_config(self) -> None:
        """config.yaml only after a resume has accepted the config (it records what actually runs)."""
        atomic_write_text(self.out / "config.yaml", dump_config(self.cfg))

    def _drop_metrics_after(self, step: int) -> None:
        path = self.out / "metrics.jsonl"
        if path.is_file():
            rows = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))

    # ------------------------------------------------------------------ loop
    def _autocast(self):
        mode = self.cfg.precision
        if mode == "bf16" or (mode == "auto" and self.device.type == "cuda"):
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def unroll(self, batch: Any, tout: Any) -> Any:
        """TTT forward of one micro-batch (a hook: the FSDP2 trainer runs it inside its sharded root)."""
        return ttt_unroll(self.draft, batch, tout, ttt_length=self.cfg.ttt_length, decay=self.cfg.loss_decay,
                          attn_impl=self.attn_impl, recompute=self.cfg.recompute_ttt)

    def train_step(self) -> dict[str, Any]:
        cfg = self.cfg
        self.draft.train()
        self.optimizer.zero_grad(set_to_none=True)
        k = cfg.ttt_length
        sums: dict[str, float] = {f"ploss_{i}": 0.0 for i in range(k)} | {f"acc_{i}": 0.0 for i in range(k)}
        loss_sum, accept_sum, accept_rows, tokens = 0.0, 0.0, 0, 0
        for micro in range(cfg.optim.grad_accum):
            batch = self.schedule.batch(self.step * cfg.optim.grad_accum + micro).to(self.device)
            tokens += batch.num_tokens
            t2d = self.draft.t2d
            with self._autocast():
                tout = self.target.forward(batch.input_ids, batch.attention_mask, t2d)
                res = self.unroll(batch, tout)
            (res.loss / cfg.optim.grad_accum).backward()
            loss_sum += float(res.loss.detach())
            for i in range(k):
                sums[f"ploss_{i}"] += res.ploss[i] / cfg.optim.grad_accum
                sums[f"acc_{i}"] += res.acc[i] / cfg.optim.grad_accum
            accept_sum += res.accept_len * res.accept_rows
            accept_rows += res.accept_rows
            del batch, tout, res  # the [B, T, V_d] target probabilities: not held into the next micro-batch or the step
        grad_norm = torch.nn.utils.clip_grad_norm_([p for p in self.draft.parameters() if p.requires_grad],
                                                   cfg.optim.max_grad_norm)
        lr = self.scheduler.get_last_lr()[0]
        self.optimizer.step()
        self.scheduler.step()
        self.step += 1
        if self.device.type == "cpu":
            release_free_host_memory()  # ~1 ms; keeps the next step's peak from stacking on freed-but-held pages
        return {"loss": loss_sum / cfg.optim.grad_accum, **sums,
                "accept_len": accept_sum / max(accept_rows, 1), "grad_norm": float(grad_norm), "lr": lr,
                "tokens": tokens}

    def validate(self) -> dict[str, float]:
        """Held-out metrics (`val_*`), or {} without held-out examples."""
        if not self.val_examples:
            return {}
        self.draft.eval()
        try:
            out = validate(self.unroll, self.target, self.draft.t2d, self.val_examples,
                           ttt_length=self.cfg.ttt_length, batch_size=self.cfg.val.batch_size,
                           pad_id=self.schedule.pad_id, device=self.device)
        finally:
            self.draft.train()
        # acc_0 by target-confidence band: a list, kept out of the scalar metrics in <out>/val_bands.json by step
        bands = out.pop("val_bands")
        if is_main():
            path = self.out / "val_bands.json"
            saved = json.loads(path.read_text()) if path.is_file() else {}
            atomic_write_json(path, saved | {str(self.step): bands})
        return out

    def _validation_due(self) -> bool:
        every = self.cfg.val.every
        return self.step == self.cfg.max_steps or (every > 0 and self.step % every == 0)

    def train(self) -> list[dict[str, Any]]:
        cfg = self.cfg
        self.out.mkdir(parents=True, exist_ok=True)
        self.maybe_resume()
        if is_main():
            self.write_config()
        tb = str(self.out / "tb") if cfg.tensorboard else None
        history = []
        with MetricsWriter(self.out / "metrics.jsonl", tensorboard_dir=tb) as writer:
            if self.step == 0 and cfg.val.every > 0 and self.val_examples:
                # the starting point on the same held-out rows (init_from's draft), so a round's gain is measured
                writer.log(0, **self.validate())
            bar = progress(total=cfg.max_steps, initial=self.step, desc="draft train")
            while self.step < cfg.max_steps:
                t0 = time.perf_counter()
                row = self.train_step()
                row["tokens_per_s"] = row["tokens"] / max(time.perf_counter() - t0, 1e-9)
                if self._validation_due():
                    row |= self.validate()
                history.append({"step": self.step, **row})
                if self.step % cfg.log_every == 0 or self.step == cfg.max_steps or "val_rows" in row:
                    writer.log(self.step, **row)
                if self.step % cfg.ckpt_every == 0 or self.step == cfg.max_steps:
                    self.save()
                bar.update(1)
                bar.set_postfix(loss=f"{row['loss']:.3f}", acc0=f"{row['acc_0']:.2f}", tau=f"{row['accept_len']:.2f}")
                if cfg.throttle_s:
                    time.sleep(cfg.throttle_s)
            bar.close()
        return history
