"""Typed config of `python -m speculative prepare` (YAML examples: experiments/configs/speculative/offline_*.yaml).

`out_dir` defaults to `<cache>/speculative/hidden_states/default` (runtime.paths.cache_dir): shards are large,
rebuildable scratch and never go into the source tree."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import StrictModel
from runtime.paths import cache_dir
from speculative.train.config import DataConfig, TargetConfig


def default_shard_dir() -> str:
    return str(cache_dir("speculative/hidden_states", create=False) / "default")


class HiddenStatesConfig(StrictModel):
    data: DataConfig = DataConfig()  # must equal the training run's data section (same examples, same order)
    target: TargetConfig = TargetConfig()
    out_dir: str = Field(default_factory=default_shard_dir)  # see the module doc
    storage_dtype: Literal["bf16", "fp16", "fp32"] = "bf16"
    shard_size: int = 256  # sequences per shard: the unit of resume and of hash checks
    batch_size: int = 4  # target forward batch
    seed: int = 0
    device: str | None = None
    threads: int | None = None

    @model_validator(mode="after")
    def _check(self) -> HiddenStatesConfig:
        if self.shard_size < 1 or self.batch_size < 1:
            raise ValueError("shard_size and batch_size must be >= 1")
        return self
