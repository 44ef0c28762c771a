"""Typed configs for SIA, one per pipeline stage, all strict (unknown keys fail)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from runtime.config import StrictModel

SteerMode = Literal["base", "dense", "sia", "random"]
# junction detectors, each a score where higher = more of a junction: the top-K entropy (the paper's), the
# entropy over the full vocabulary, and the probability mass outside the top-K (1 - top-K mass)
Detector = Literal["topk_entropy", "full_entropy", "topk_mass"]
Task = Literal["sentiment", "sentiment-completion", "harmless", "helpful"]
# the teacher reward of each task: distillation labels with it and evaluation scores with it
TEACHER: dict[str, str] = {"sentiment": "vader", "sentiment-completion": "vader", "harmless": "judge",
                           "helpful": "judge"}


class SteerConfig(StrictModel):
    """One decoding method. `base` never steers, `dense` steers every token, `sia` steers when the
    top-K junction entropy is >= tau, `random` steers each token with probability `random_rate`.
    `sia` with `target_rate` set: per-prompt rate targeting — tau follows this prompt's own entropies
    (running quantile, see steer/gate.py); `tau` is only the prior for the first `rate_warmup` tokens."""

    mode: SteerMode = "sia"
    top_k: int = Field(10, ge=2, le=1000)
    detector: Detector = "topk_entropy"  # what the gate thresholds with tau (and what records call `entropy`)
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


REWARD_NAMES = ("vader", "afinn", "textblob", "judge")  # what rewards.make_reward builds by name


class DistillConfig(StrictModel):
    """Distillation data: sample from the base model, label each response with the teacher reward (EOS kept:
    the value of an ended response is what the steered EOS candidate is scored against). With
    `candidate_positions > 0`, at that many positions per response the top-K candidates are each scored
    by the teacher on prefix + candidate: the candidate-level (ranking) target; `candidate_bands` [lo, hi, n] add n
    positions with top-K entropy in [lo, hi) each, so V sees enough of the bands a uniform draw rarely reaches."""

    teacher: str | None = None  # None: the task's teacher (TEACHER above); set, it must be that one
    num_prompts: int | None = Field(64, ge=1)  # None: every training prompt of the task
    samples_per_prompt: int = Field(4, ge=1)
    max_new_tokens: int | None = Field(48, ge=1)  # None: the evaluation length (eval.max_new_tokens)
    candidate_positions: int = Field(0, ge=0)
    candidate_bands: list[tuple[float, float, int]] = []  # [lo, hi, n] in nats of top-K entropy (value/candidates.py)
    candidate_k: int = Field(10, ge=2)
    temperature: float = Field(1.0, gt=0.0)
    prompts_per_batch: int = Field(1, ge=1)  # > 1: several prompts (left-padded) per `generate` call
    seed: int = 0

    @field_validator("candidate_bands")
    @classmethod
    def _bands_valid(cls, bands: list[tuple[float, float, int]]) -> list[tuple[float, float, int]]:
        for lo, hi, n in bands:
            if not (0.0 <= lo < hi) or n < 0:
                raise ValueError(f"candidate band {[lo, hi, n]}: need 0 <= lo < hi and n >= 0")
        return bands

    @field_validator("teacher")
    @classmethod
    def _teacher_resolves(cls, name: str | None) -> str | None:
        if name is None or name in REWARD_NAMES:
            return name
        if name.startswith("hf-rm:"):
            folder = Path(name.split(":", 1)[1])
            if not (folder / "config.json").is_file():
                raise ValueError(f"teacher '{name}': {folder} is not a HF model folder (no config.json)")
            return name
        raise ValueError(f"unknown teacher '{name}'; use {' | '.join(REWARD_NAMES)} | hf-rm:<folder>")


class ValueTrainConfig(StrictModel):
    """Head training: MSE of V at every prefix to the final reward, plus (with candidate data) a ranking
    loss over each labelled position's K candidates. Validation holds out whole prompts; every
    `checkpoint_every` steps the held-out pairwise accuracy is measured and the best head is kept
    (early stopping after `patience` checks without improvement; 0 = never stop early)."""

    epochs: int = Field(20, ge=1)
    batch_tokens: int = Field(512, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    weight_decay: float = 0.0
    checkpoint_every: int = Field(200, ge=1)
    val_fraction: float = Field(0.1, ge=0.0, lt=1.0)  # of the prompts
    mse_weight: float = Field(1.0, ge=0.0)
    rank_loss: Literal["none", "listwise", "pairwise"] = "listwise"
    rank_weight: float = Field(1.0, ge=0.0)
    rank_temperature: float = Field(0.1, gt=0.0)  # listwise: teacher scores / T -> target distribution
    rank_batch: int = Field(64, ge=1)  # candidate positions per step
    tie_eps: float = Field(1e-6, ge=0.0)  # teacher differences below this are ties (no pair)
    patience: int = Field(0, ge=0)
    entropy_bands: list[float] = [0.5, 1.0, 1.5]  # top-K entropy band edges (nats) for the accuracy report
    seed: int = 0


class SteerEvalConfig(StrictModel):
    task: Task = "sentiment"
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
    # --- the powered evaluation (`python -m sparse_align powered`, eval/powered.py) ---
    seeds: int = Field(1, ge=1)  # samples per prompt per arm, Gumbel noise shared across arms per (prompt, seed, t)
    detector: Detector = "topk_entropy"
    primary_rates: list[float] = [0.2, 0.4]  # SIA-vs-random comparisons fixed in advance (Holm over these)
    w0_rates: list[float] = [0.2, 0.4]  # SIA at w = 0 (truncation to the top-K alone); dense-w0 is always run
    exact_rates: list[float] = [0.2, 0.4]  # SIA with the exact one-token teacher as the guide; dense-exact too
    bon_pool: int = Field(8, ge=1)  # base samples per prompt that BoN-n draws its n-subsets from
    sia_bon_n: int = Field(4, ge=1)  # SIA+BoN: best of n of the SIA@sia_bon_rate arm's seeds
    scorers: list[str] = []  # scorers beside the teacher: afinn | textblob | judge
    equivalence_margin: float = Field(0.05, gt=0.0)  # "matches dense": 90% CI of SIA - dense inside +-margin
    alpha: float = Field(0.05, gt=0.0, lt=1.0)
    bootstrap: int = Field(10_000, ge=100)
    posttrained: bool = False  # add the post-trained stand-in arm (`python -m sparse_align posttrain` first)
    # the value model the powered evaluation steers with: "" = the head this run trained (run dir), "shipped" = the
    # head shipped in the package (sha256-checked; no distill/train needed), or a folder holding a saved value model
    value_head: str = ""

    @model_validator(mode="after")
    def _rates_in_range(self) -> SteerEvalConfig:
        rates = self.sia_rates + self.prompt_rates + self.primary_rates + self.w0_rates + self.exact_rates
        bad = [r for r in rates if not 0.0 < r <= 1.0]
        if bad:
            raise ValueError(f"sia_rates must be in (0, 1], got {bad}")
        if self.bon_n and self.bon_pool < max(self.bon_n):
            raise ValueError(f"bon_pool ({self.bon_pool}) must be >= the largest bon_n ({max(self.bon_n)})")
        return self


class SweepConfig(StrictModel):
    """The w sweep (eval/sweep.py), on training prompts so tuning never sees the eval prompts: reward
    against KL per token and against value calls, for SIA at `rates` (1.0 = dense)."""

    weights: list[float] = [0.0, 1.0, 2.0, 4.0, 8.0, 16.0]
    rates: list[float] = [0.2, 0.4, 1.0]
    num_prompts: int = Field(32, ge=1)
    seeds: int = Field(2, ge=1)


class JunctionConfig(StrictModel):
    """Where the one-token reward gain sits and which detector finds it (steer/positions.py): base samples
    on training prompts, every top-K candidate scored exactly by the teacher at every position."""

    num_prompts: int = Field(48, ge=1)
    seeds: int = Field(4, ge=1)
    rates: list[float] = [0.2, 0.4]


class PosttrainConfig(StrictModel):
    """The post-trained stand-in: the base model fine-tuned (LoRA, merged) on its own teacher-best of the
    distillation samples per training prompt."""

    lora_rank: int = Field(16, ge=1)
    epochs: int = Field(3, ge=1)
    lr: float = Field(2e-4, gt=0.0)
    seed: int = 0


def _default_threads() -> int:
    return int(os.environ.get("LLMSYS_THREADS") or 1)


class SIAConfig(StrictModel):
    """Everything `python -m sparse_align <verb>` needs; the YAML files live under
    experiments/configs/sparse_align/. Without a config file a verb runs on these defaults: name `default`,
    every section at its own defaults (mid-size, not a measured setting; the toy run is small.yaml)."""

    name: str = "default"  # result files are sparse_align_<kind>_<name>.{json,md}; the cache dir sia/<name>
    run_dir: str = ""  # distillation data, checkpoints, value model; default: the cache dir sia/<name>
    results_dir: str | None = None  # result files; None: runtime.paths.results_dir() ($LLMSYS_RESULTS_DIR or ./results)
    # torch threads; default $LLMSYS_THREADS, else 1 (on a shared CPU more threads spin and run slower)
    threads: int = Field(default_factory=_default_threads, ge=1)
    value: ValueModelConfig = ValueModelConfig()
    distill: DistillConfig = DistillConfig()
    train: ValueTrainConfig = ValueTrainConfig()
    eval: SteerEvalConfig = SteerEvalConfig()
    sweep: SweepConfig = SweepConfig()
    junctions: JunctionConfig = JunctionConfig()
    posttrain: PosttrainConfig = PosttrainConfig()

    @model_validator(mode="after")
    def _teacher_is_the_tasks(self) -> SIAConfig:
        """The pipeline scores with the task's teacher: a different distill.teacher would be recorded and ignored."""
        wanted = TEACHER.get(self.eval.task)
        if self.distill.teacher is not None and self.distill.teacher != wanted:
            raise ValueError(f"distill.teacher '{self.distill.teacher}' is not the teacher of task '{self.eval.task}' "
                             f"('{wanted}', which distillation and evaluation use): set it to '{wanted}' or remove it")
        return self
