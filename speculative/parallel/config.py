"""Typed config of the distributed / offline path of `python -m speculative train` (the keys below on top
of DraftTrainConfig's; YAML examples: experiments/configs/speculative/dist_*.yaml, offline_train_*.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from runtime.config import StrictModel
from speculative.train.config import DraftTrainConfig


class ParallelConfig(StrictModel):
    tp: int = 1  # tensor-parallel size of the target (target_kind: tp); the draft is data-parallel on all ranks
    backend: Literal["gloo", "nccl"] | None = None  # None: nccl on CUDA, gloo on CPU
    fsdp: bool = True  # shard the draft with FSDP2 when world > 1


# the keys that select the distributed path of `speculative train` (speculative/train/run.py)
DIST_KEYS = ("target_kind", "offline_dir", "parallel")


class DistTrainConfig(DraftTrainConfig):
    target_kind: Literal["hf", "offline", "tp"] = "hf"  # online HF / precomputed shards / megatron TP
    offline_dir: str | None = None  # shards from `python -m speculative prepare` (target_kind offline)
    parallel: ParallelConfig = ParallelConfig()

    @model_validator(mode="after")
    def _check_kind(self) -> DistTrainConfig:
        if self.target_kind == "offline" and not self.offline_dir:
            raise ValueError("target_kind=offline needs offline_dir (the out_dir of `speculative prepare`)")
        if self.parallel.tp < 1:
            raise ValueError("parallel.tp must be >= 1")
        if self.parallel.tp > 1 and self.target_kind != "tp":
            raise ValueError("parallel.tp > 1 needs target_kind=tp")
        return self
