"""Typed config of `python -m speculative.evaluate` (YAML: experiments/configs/specforge/eval_*.yaml)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from runtime.config import StrictModel
from runtime.paths import cache_dir
from speculative.decode.config import DecodeConfig


def default_bundle_dir() -> str:
    """Where `make spec-bundle` puts the trained draft (outside git: weights are rebuilt, not committed)."""
    return str(cache_dir("bundles", create=False) / "smollm2-135m-eagle3")


class SweepPoint(StrictModel):
    mode: Literal["chain", "tree"]
    depth: int
    topk: int = 1
    num_draft_tokens: int = 1
    min_draft_prob: float = 0.0  # confidence cut-off (dynamic draft length), see DecodeConfig


class VLLMBaselineConfig(StrictModel):
    enabled: bool = True
    methods: list[Literal["autoregressive", "eagle3", "ngram"]] = ["autoregressive", "eagle3", "ngram"]
    num_speculative_tokens: int = 5
    prompts_per_benchmark: int = 10


class EvalConfig(StrictModel):
    target: str = "smollm2-135m-instruct"
    draft_dir: str | None = None  # an exported EAGLE-3 draft; None = <bundle dir>/train/export
    benchmarks: dict[Literal["mtbench", "humaneval", "sharegpt"], int] = Field(
        default_factory=lambda: {"mtbench": 80, "humaneval": 164, "sharegpt": 50})
    sharegpt_train_window: int = 4016  # raw ShareGPT records the trainer may have read (2 * limit + 16)
    decode: DecodeConfig = DecodeConfig(mode="chain", depth=7, max_new_tokens=256)
    sweep: list[SweepPoint] = []  # extra engine settings for the depth / tree-size figure
    sweep_prompts: int = 8  # MT-Bench turn-1 prompts per sweep point
    check_exact: bool = True  # greedy: assert spec output == autoregressive output
    vllm: VLLMBaselineConfig = VLLMBaselineConfig()
    threads: int | None = None
    # CPU fp32: every nn.Linear of target and draft through runtime.ops.small_m_linear (csrc kernel that
    # streams weights once for 1..8 rows; CPU GEMMs at 2..8 rows cost ~1.5x a 1-row GEMV)
    small_m_kernel: bool = True
    out_json: str = "experiments/results/spec_eval.json"
    out_md: str = "experiments/results/spec_eval.md"

    def resolved_draft_dir(self) -> str:
        return self.draft_dir or f"{default_bundle_dir()}/train/export"
