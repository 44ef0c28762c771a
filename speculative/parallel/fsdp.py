"""FSDP2 draft training: `DraftTrainer` with the draft sharded by `fully_shard` over all ranks.

Composition over the single-process trainer: the TTT unroll runs inside `TTTRoot.forward` (so FSDP2's
hooks all-gather the draft before it and reduce-scatter the gradients after backward), each rank reads
its own batches (`RankSchedule`), metrics are averaged over ranks, and checkpoints are gathered to
full tensors and written by rank 0 in the single-process layout (`CheckpointManager`).
Gradients are averaged over ranks, so W ranks x grad_accum g equals one process with grad_accum W*g.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from runtime.checkpoint import rng_state, set_rng_state
from runtime.distributed import barrier, rank, world_size
from runtime.logging import get_logger
from speculative.data.dataset import Batch, BatchSchedule
from speculative.model.draft import Eagle3Draft
from speculative.target.backend import TargetBackend, TargetOutputs
from speculative.train.config import DraftTrainConfig
from speculative.train.trainer import DraftTrainer
from speculative.train.ttt import TTTResult, ttt_unroll

log = get_logger("speculative.parallel")
_SKIP = ("draft.embed_tokens.", "draft.rotary.")  # frozen target embedding / buffers: not checkpointed


class RankSchedule:
    """Rank r of W reads global batch position p*W + r: the W ranks together see the single-process order."""

    def __init__(self, schedule: BatchSchedule, rank_: int, world: int):
        self.inner, self.rank, self.world = schedule, rank_, world
        self.pad_id = schedule.pad_id

    def batch(self, position: int) -> Batch:
        return self.inner.batch(position * self.world + self.rank)


class TTTRoot(nn.Module):
    """The FSDP2 root: its forward is one micro-batch's TTT unroll, returning (loss, result)."""

    def __init__(self, draft: Eagle3Draft, cfg: DraftTrainConfig, attn_impl: str):
        super().__init__()
        self.draft, self.cfg, self.attn_impl = draft, cfg, attn_impl

    def forward(self, batch: Batch, tout: TargetOutputs) -> tuple[torch.Tensor, TTTResult]:
        res = ttt_unroll(self.draft, batch, tout, ttt_length=self.cfg.ttt_length, decay=self.cfg.loss_decay,
                         attn_impl=self.attn_impl, recompute=self.cfg.recompute_ttt)
        return res.loss, res  # the bare tensor output gets FSDP2's pre-backward hook


class FSDPDraftTrainer(DraftTrainer):
    def __init__(self, cfg: DraftTrainConfig, target: TargetBackend, draft: Eagle3Draft, schedule: BatchSchedule,
                 val_examples: list[Any] | None = None):
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import fully_shard

        from runtime.device import pick_device

        device = pick_device(cfg.device)
        draft.to(device)
        attn = cfg.attn_impl if cfg.attn_impl != "auto" else ("flex" if device.type == "cuda" else "sdpa")
        self.root = TTTRoot(draft, cfg, attn)
        mesh = init_device_mesh(device.type, (world_size(),))
        # params stay gathered until backward: the unroll's outputs are not all visible to FSDP's hooks
        fully_shard(self.root, mesh=mesh, reshard_after_forward=False)
        super().__init__(cfg, target, draft, RankSchedule(schedule, rank(), world_size()),  # optimizer on DTensors
                         val_examples)
        if rank() != 0:
            self.out = self.out / f"rank{rank()}"  # metrics/TensorBoard: rank 0 owns the run folder

    def fused_optimizer(self) -> bool:
        return False  # the parameters are DTensors: the foreach AdamW is the path FSDP2 documents

    def unroll(self, batch: Any, tout: Any) -> Any:
        loss, res = self.root(batch, tout)
        return dataclasses.replace(res, loss=loss)

    def train_step(self) -> dict[str, Any]:
        row = super().train_step()
        keys = [k for k, v in row.items() if isinstance(v, float) and k not in ("grad_norm", "lr")]
        vals = torch.tensor([row[k] for k in keys] + [float(row["tokens"])], dtype=torch.float64)
        dist.all_reduce(vals)
        row.update({k: float(v) / world_size() for k, v in zip(keys, vals[:-1])})
        row["tokens"] = int(vals[-1])
        return row

    # ------------------------------------------------------------------ checkpoints
    def _options(self, **kw: Any) -> Any:
        from torch.distributed.checkpoint.state_dict import StateDictOptions

        return StateDictOptions(full_state_dict=True, **kw)

    def full_draft_weights(self) -> dict[str, torch.Tensor]:
        """The draft's `trainable_state_dict` as full CPU tensors on rank 0 ({} elsewhere); a collective."""
        from torch.distributed.checkpoint.state_dict import get_model_state_dict

        model = get_model_state_dict(self.root, options=self._options(cpu_offload=True))
        return {k.removeprefix("draft."): v for k, v in model.items() if not k.startswith(_SKIP)}

    def export_draft(self) -> Eagle3Draft | None:
        """An unsharded copy of the trained draft on rank 0 (None elsewhere), e.g. for `export_draft`."""
        weights = self.full_draft_weights()
        if rank() != 0:
            return None
        draft = Eagle3Draft(self.draft.config, embed_weight=self.target.embedding_weight().float().cpu())
        draft.load_state_dict(weights, strict=False)
        return draft

    def save(self) -> None:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        # collectives: every rank takes part, rank 0 gets full CPU tensors and writes
        weights = self.full_draft_weights()
        optim = get_optimizer_state_dict(self.root, self.optimizer, options=self._options(cpu_offload=True))
        if rank() == 0:
            state = {"optimizer": optim, "scheduler": self.scheduler.state_dict(), "rng": rng_state(),
                     "step": self.step, "position": self.step * self.cfg.optim.grad_accum, "world_size": world_size(),
                     "config": self.cfg.model_dump(mode="json")}
            self.ckpts.save(self.step, tensors={"draft": weights}, state=state)
        barrier()

    def maybe_resume(self) -> bool:
        from torch.distributed.checkpoint.state_dict import set_model_state_dict, set_optimizer_state_dict

        barrier()  # rank 0 may still be rotating checkpoints
        ck = self.ckpts.load(map_location="cpu", quarantine=rank() == 0)  # one rank moves corrupt folders
        if ck is None:
            return False
        if int(ck.state.get("world_size", 1)) != world_size():
            raise RuntimeError(f"{ck.path} was written by {ck.state.get('world_size', 1)} ranks; resume with as "
                               f"many (the batch order depends on it), not {world_size()}")
        weights = ck.tensors["draft"]
        if not (torch.equal(weights["d2t"], self.draft.d2t.cpu()) and torch.equal(weights["t2d"], self.draft.t2d.cpu())):
            raise RuntimeError(f"checkpoint {ck.path} was trained with another draft vocabulary; use a new out_dir")
        set_model_state_dict(self.root, {f"draft.{k}": v for k, v in weights.items()},
                             options=self._options(strict=False))
        set_optimizer_state_dict(self.root, self.optimizer, ck.state["optimizer"], options=self._options())
        self.scheduler.load_state_dict(ck.state["scheduler"])
        self.apply_resume_config(ck)
        set_rng_state(ck.state["rng"])
        self.step = int(ck.state["step"])
        self._drop_metrics_after(self.step)
        log.info("rank %d resumed from %s (step %d)", rank(), ck.path, self.step)
        return True
