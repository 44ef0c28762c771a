"""SOPRAG settings: one typed config passed explicitly to the index, the experts, the gate and the pipeline.

Defaults are the best settings measured (see sopr_rag/README.md); experiments/configs/soprag/default.yaml
spells them out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from runtime.config import StrictModel


class Stage1Config(StrictModel):
    top_m: int = Field(20, ge=1, description="cards kept after lexical+dense pruning; experts score only these")
    candidates: int = Field(100, ge=1, description="hits taken from each of BM25 and dense before RRF")
    rrf_k: int = Field(60, ge=0)


class ExpertConfig(StrictModel):
    ppr_damping: float = Field(0.85, gt=0, lt=1, description="PageRank continuation probability")
    fuzzy_threshold: float = Field(0.8, gt=0, le=1, description="difflib ratio for fuzzy entity links")
    embed_threshold: float = Field(0.55, ge=-1, le=1, description="cosine for embedding entity links")
    max_embed_links: int = Field(5, ge=0)
    causal_contrast_weight: float = Field(0.5, ge=0, description="weight of pruned-set IDF condition overlap")
    flow_lexical_weight: float = Field(0.3, ge=0, le=1, description="token overlap share of step matching")


class GateConfig(StrictModel):
    mode: Literal["rules", "llm"] = "rules"
    backend: Literal["hf", "vllm", "openai"] = "hf"
    model: str | None = None  # None -> the embedded SmolLM2 for hf/vllm
    base_url: str | None = None  # for the openai backend
    max_new_tokens: int = Field(24, ge=1, le=256)
    cache_path: str | None = None  # None -> runtime cache_dir("sopr_rag")/gate_cache.jsonl
    weight_floor: float = Field(0.1, ge=0, lt=0.34, description="every expert keeps at least this weight")
    prior: dict[Literal["entity", "causal", "flow"], float] = Field(
        default_factory=lambda: {"entity": 0.5, "causal": 2.5, "flow": 0.8},
        description="multiplies the intent weights before normalising: each expert's stand-alone reliability")


class FusionConfig(StrictModel):
    method: Literal["weighted", "rrf"] = "weighted"
    stage1_weight: float = Field(0.5, ge=0, le=1, description="share of the normalised stage-1 card score")
    rrf_k: int = Field(60, ge=0)


class AnswerConfig(StrictModel):
    max_steps: int = Field(5, ge=1, le=50)
    generate: bool = False  # ask the LLM for a grounded answer (needs the gate backend)
    max_new_tokens: int = Field(200, ge=1, le=1024)


class SopragConfig(StrictModel):
    stage1: Stage1Config = Stage1Config()
    experts: ExpertConfig = ExpertConfig()
    gate: GateConfig = GateConfig()
    fusion: FusionConfig = FusionConfig()
    answer: AnswerConfig = AnswerConfig()
