"""Typed config for `python -m speculative.prepare_hidden_states` (experiments/configs/speculative/offline_*.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from runtime.config import StrictModel
from speculative.train.config import DataConfig, TargetConfig


class PrepareConfig(StrictModel):
    data: DataConfig = DataConfig()  # must equal the training run's data section (same examples, same order)
    target: TargetConfig = TargetConfig()
    out_dir: str = "experiments/results/specforge/hidden_states/smollm2-sharegpt"
    storage_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    shard_size: int = 256  # sequences per shard: the unit of resume and of hash checks
    batch_size: int = 4  # target forward batch
    seed: int = 0
    device: str | None = None
    threads: int | None = None

    @model_validator(mode="after")
    def _check(self) -> PrepareConfig:
        if self.shard_size < 1 or self.batch_size < 1:
            raise ValueError("shard_size and batch_size must be >= 1")
        return self
