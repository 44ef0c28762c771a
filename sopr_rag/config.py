"""SOPRAG settings: one typed config passed explicitly to the index, the experts, the gate and the pipeline.

Defaults are the best settings measured (see sopr_rag/README.md); experiments/configs/soprag/default.yaml
spells them out.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from runtime.config import StrictModel


class Stage1Config(StrictModel):
    top_m: int = Field(20, ge=1, description="procedures kept after the evidence (or card) ranking; experts score only these")
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


VOTERS = ("bm25", "dense", "card_dense", "card_bm25")
DEFAULT_VOTERS = {"bm25": 1.0, "dense": 1.0, "card_dense": 1.0, "card_bm25": 0.0}
DEFAULT_EXPERT_VOTES = {"entity": 0.0, "causal": 1.0, "flow": 0.0}


class FusionConfig(StrictModel):
    method: Literal["evidence", "weighted", "rrf"] = "evidence"
    # evidence (default): weighted RRF of the lexical/dense evidence voters and the expert rankings
    voters: dict[Literal["bm25", "dense", "card_dense", "card_bm25"], float] = Field(
        default_factory=lambda: dict(DEFAULT_VOTERS),
        description="RRF weight of each evidence ranking (sopr_rag/evidence.py); lexical ones times the trust")
    expert_votes: dict[Literal["entity", "causal", "flow"], float] = Field(
        default_factory=lambda: dict(DEFAULT_EXPERT_VOTES),
        description="fixed RRF weight of each expert's ranking of the candidates")
    gated_votes: float = Field(0.0, ge=0, description="plus this * 3 * gate weight per expert (0: gate off)")
    trust_k: int = Field(5, ge=0, description="lexical trust: overlap of the BM25 and dense top-k (0 = off)")
    trust_full: float = Field(0.4, ge=0, le=1, description="agreement at which lexical voters get full weight")
    trust_floor: float = Field(0.2, ge=0, le=1, description="lexical weight never drops below this")
    # weighted / rrf (the first design): card stage 1 + gated experts
    stage1_weight: float = Field(0.5, ge=0, le=1, description="share of the normalised stage-1 card score")
    rrf_k: int = Field(60, ge=0)

    @field_validator("voters", "expert_votes", mode="after")
    @classmethod
    def _fill_defaults(cls, v: dict, info) -> dict:
        """A partial override (--set fusion.voters.card_dense=0) keeps the other defaults."""
        base = DEFAULT_VOTERS if info.field_name == "voters" else DEFAULT_EXPERT_VOTES
        if any(w < 0 for w in v.values()):
            raise ValueError(f"{info.field_name} weights must be >= 0")
        return {**base, **v}


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
