"""Typed configs for SIA, one per pipeline stage, all strict (unknown keys fail)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from runtime.config import StrictModel

SteerMode = Literal["base", "dense", "sia", "random"]


class SteerConfig(StrictModel):
    """One decoding method. `base` never steers, `dense` steers every token, `sia` steers when the
    top-K junction entropy is >= tau, `random` steers each token with probability `random_rate`."""

    mode: SteerMode = "sia"
    top_k: int = Field(10, ge=2, le=1000)
    tau: float = Field(1.0, ge=0.0)
    weight: float = Field(5.0, ge=0.0)
    random_rate: float = Field(0.3, ge=0.0, le=1.0)
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
    seed: int = 0

    @model_validator(mode="after")
    def _rates_in_range(self) -> EvalConfig:
        bad = [r for r in self.sia_rates if not 0.0 < r <= 1.0]
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
