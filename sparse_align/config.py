"""Typed configs for SIA, one per pipeline stage, all strict (unknown keys fail)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import StrictModel

SteerMode = Literal["base", "dense", "sia", "random"]


class SteerConfig(StrictModel):
    """One decoding method. `base` never steers, `dense` steers every token, `sia` steers when the
    top-K junction entropy is >= tau, `random` steers each token with probability `random_rate`.
    `sia` with `target_rate` set: per-prompt rate targeting — tau follows this prompt's own entropies
    (running quantile, see steer/gate.py); `tau` is only the prior for the first `rate_warmup` tokens."""

    mode: SteerMode = "sia"
    top_k: int = Field(10, ge=2, le=1000)
    tau: float = Field(1.0, ge=0.0)
    weight: float = Field(5.0, ge=0.0)
    random_rate: float = Field(0.3, ge=0.0, le=1.0)
    target_rate: float | None = Field(None, gt=0.0, le=1.0)
    rate_warmup: int = Field(4, ge=0)
    greedy: bool = False
    max_new_tokens: int = Field(48, ge=1)
    seed: int = 0


class ValueModelConfig(StrictModel):
    backbone: str = "smollm2-135m-instruct"  # asset name or local HF folder
    head_hidden: int = Field(256, ge=0)  # 0 = a single linear layer
    lora_rank: int = Field(0, ge=0)  # > 0: LoRA adapters on the backbone (then it no longer shares the KV cache)
    lora_alpha: float = 16.0


class DistillConfig(StrictModel):
    """Distillation data: sample from the base model, label each response with the teacher reward."""

    teacher: str = "vader"
    num_prompts: int = Field(64, ge=1)
    samples_per_prompt: int = Field(4, ge=1)
    max_new_tokens: int = Field(48, ge=1)
    temperature: float = Field(1.0, gt=0.0)
    prompts_per_batch: int = Field(1, ge=1)  # > 1: several prompts (left-padded) per `generate` call
    seed: int = 0


class TrainConfig(StrictModel):
    epochs: int = Field(20, ge=1)
    batch_tokens: int = Field(512, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = 0.0
    checkpoint_every: int = Field(200, ge=1)
    seed: int = 0


class EvalConfig(StrictModel):
    task: Literal["sentiment", "harmless", "helpful"] = "sentiment"
    num_prompts: int = Field(16, ge=1)
    prompt_offset: int = Field(1000, ge=0)  # eval prompts are disjoint from the distillation prompts
    max_new_tokens: int = Field(48, ge=1)
    top_k: int = Field(10, ge=2)
    weight: float = Field(5.0, ge=0.0)
    sia_rates: list[float] = [0.2, 0.4, 0.6, 0.8]
    bon_n: list[int] = [4, 8]
    sia_bon_rate: float = Field(0.4, gt=0.0, le=1.0)
    calibration_prompts: int = Field(8, ge=1)
    second_scorer: Literal["none", "judge"] = "judge"
    prompt_rates: list[float] = []  # per-prompt rate targeting methods ("sia-prompt@<rate>"), e.g. [0.2, 0.4]
    batch_rows: int = Field(1, ge=1)  # sequences decoded together (ragged batch); 1 = the batch-1 loop
    timing_prompts: int = Field(0, ge=0)  # > 0: batch-1 latency of every method, interleaved per prompt
    timing_max_rate: float = Field(1.0, gt=0.0, le=1.0)  # batch-1 timing only for rates up to this
    seed: int = 0

    @model_validator(mode="after")
    def _rates_in_range(self) -> EvalConfig:
        bad = [r for r in self.sia_rates + self.prompt_rates if not 0.0 < r <= 1.0]
        if bad:
            raise ValueError(f"sia_rates must be in (0, 1], got {bad}")
        return self


class SIAConfig(StrictModel):
    """Everything `python -m sparse_align` needs; YAML under experiments/configs/sia/."""

    name: str = "small"  # results go to experiments/results/sia_eval_<name>.{json,md}
    run_dir: str = ""  # distillation data, checkpoints, value model; default: the cache dir sia/<name>
    value: ValueModelConfig = ValueModelConfig()
    distill: DistillConfig = DistillConfig()
    train: TrainConfig = TrainConfig()
    eval: EvalConfig = EvalConfig()
