"""Typed config of `python -m speculative train` (YAML examples: experiments/configs/speculative/).

`out_dir` defaults to `<cache>/speculative/runs/draft` (runtime.paths.cache_dir, outside any checkout):
checkpoints are scratch; name an out_dir to keep a run apart."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import StrictModel
from runtime.paths import cache_dir


class DataConfig(StrictModel):
    source: str = "sharegpt"  # "sharegpt" (asset) or a JSONL path with messages/conversations
    limit: int | None = Field(2000, ge=1)  # conversations kept after validation
    max_length: int = Field(512, ge=2)
    last_turn_only: bool = False
    draft_vocab_size: int = Field(32000, ge=1)  # capped at the target vocab


class TargetConfig(StrictModel):
    model: str = "smollm2-135m-instruct"  # asset name or a local HF folder
    aux_layer_ids: list[int] | None = None  # vLLM convention; None = [2, L//2, L-3]
    dtype: str = "auto"  # fp32 on CPU, bf16 on CUDA


class OptimConfig(StrictModel):
    lr: float = Field(3e-4, gt=0)
    weight_decay: float = Field(0.0, ge=0)
    betas: tuple[float, float] = (0.9, 0.95)
    warmup_steps: int = Field(20, ge=0)
    min_lr_ratio: float = Field(0.0, ge=0, le=1)  # cosine decays from lr to lr * min_lr_ratio at max_steps (the planned run)
    max_grad_norm: float = Field(0.5, gt=0)
    batch_size: int = 1
    grad_accum: int = 4

    @model_validator(mode="after")
    def _check_betas(self) -> OptimConfig:
        if not all(0 <= b < 1 for b in self.betas):
            raise ValueError(f"optim.betas must each be in [0, 1), got {self.betas}")
        return self


class ValConfig(StrictModel):
    """Held-out validation: the draft's acc_k / simulated accept length on examples it never trains on.

    Training accuracy says little about decoding on a small dataset: the round-2 SmolLM2 draft scored acc_0
    0.63 on its own training conversations and 0.40 on held-out ones (MT-Bench accept@1 0.35)."""

    examples: int = Field(0, ge=0)  # taken from the END of the prepared examples (whole conversations), never trained on
    every: int = Field(0, ge=0)  # optimizer steps between validations (0: only after the last step)
    batch_size: int = Field(4, ge=1)


def default_run_dir() -> str:
    """Where a training run goes when its config names no out_dir (the cache, never the source tree)."""
    return str(cache_dir("speculative/runs", create=False) / "draft")


class DraftTrainConfig(StrictModel):
    data: DataConfig = DataConfig()
    target: TargetConfig = TargetConfig()
    optim: OptimConfig = OptimConfig()
    val: ValConfig = ValConfig()
    ttt_length: int = Field(7, ge=1)
    loss_decay: float = Field(0.8, gt=0, le=1)
    # the draft's lm_head / final norm start random (SpecForge) or as the target's (draft-vocab rows). Measured
    # on SmolLM2 (offline, 1.6k self-distilled conversations): acc_0 over steps 76-100 0.219 vs 0.217 random,
    # after a higher start (loss 33 vs 22): no gain, so random stays the default
    head_init: Literal["random", "target"] = "random"
    # the draft MLP's width (None = the target's). Qwen2.5-0.5B's 4864 puts a one-layer draft at ~50 MB in bf16;
    # the shipped bundle must stay <= 25 MB, and the MLP is the largest part the decoder does not need wide
    draft_intermediate_size: int | None = Field(None, ge=1)
    init_from: str | None = None  # an exported draft to start from when out_dir has no checkpoint
    aux_norm_batches: int = Field(8, ge=0)  # batches to measure the aux layers' RMS for the fixed fc-input scale; 0 = off
    max_steps: int = 500  # optimizer steps
    attn_impl: Literal["auto", "sdpa", "flex"] = "auto"  # auto: flex on CUDA, sdpa on CPU
    # compute precision of the draft step; weights, gradients and AdamW state stay fp32 in every mode.
    # auto: bf16 autocast on CUDA, fp32 on CPU. bf16: autocast on CPU too (linears, attention and the soft-CE
    # GEMMs in bf16): pays on CPUs with AMX-bf16 (~3.5x fp32's GEMM rate), slower than fp32 without it
    precision: Literal["auto", "fp32", "bf16"] = "auto"
    # activation checkpointing per TTT step: recompute the midlayer in backward instead of holding its
    # activations (measured ~40 MB per step at 512 tokens, ~250 MB at ttt 7) for one more midlayer forward
    recompute_ttt: bool = False
    seed: int = 0
    device: str | None = None
    threads: int | None = None
    out_dir: str = Field(default_factory=default_run_dir)  # checkpoints, metrics, export; see the module doc
    log_every: int = 1
    ckpt_every: int = 50
    keep_ckpts: int = 2
    tensorboard: bool = True
    export: bool = True  # write the vLLM/SGLang export to <out_dir>/export at the end
    throttle_s: float = 0.0  # sleep per step; only for the kill/resume test to land its kill mid-run

    @model_validator(mode="after")
    def _check(self) -> DraftTrainConfig:
        if self.ttt_length < 1:
            raise ValueError("ttt_length must be >= 1")
        if self.max_steps < 1 or self.ckpt_every < 1 or self.log_every < 1:
            raise ValueError("max_steps, ckpt_every and log_every must be >= 1")
        if self.optim.batch_size < 1 or self.optim.grad_accum < 1:
            raise ValueError("batch_size and grad_accum must be >= 1")
        return self
