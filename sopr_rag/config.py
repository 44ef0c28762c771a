"""SOPRAG settings: one typed config passed explicitly to the index, the experts, the gate and the pipeline.

Defaults are the best settings measured (see sopr_rag/README.md); experiments/configs/sopr_rag/default.yaml
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
    causal_facet_weight: float = Field(1.0, ge=0, description="bonus: activation of the best node of a second kind")
    component_links: int = Field(3, ge=0, description="components a query may link to by meaning")
    component_min_sim: float = Field(0.3, ge=-1, le=1, description="cosine a meaning link needs")
    component_margin: float = Field(0.1, ge=0, description="meaning links within this of the best one")
    component_alias_links: bool = Field(
        False, description="a component whose name or alias occurs word for word in the query links with confidence "
        "1; off: meaning links only (the query's cosine to the component's profile)")
    component_vote_by_link: bool = Field(
        True, description="the component graph's vote times its best link's confidence (1 for a name or alias in "
        "the query, the cosine for a meaning link): a weak guess at the component moves the ranking little")
    component_abstain_named: bool = Field(
        True, description="the component graph does not vote on a query that names a component by an identifier "
        "the runbooks use (a plain question, which BM25 answers); it votes on descriptions of components")
    propose: int = Field(10, ge=0, description="candidates each graph expert adds from the whole corpus")
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


class CardsConfig(StrictModel):
    """Procedure Cards: rule-based always; `llm` adds an LLM-built card per SOP at index time (cached by hash)."""

    mode: Literal["rules", "llm"] = "rules"
    backend: Literal["hf", "vllm", "openai"] = "vllm"  # vllm: in-process batched (fastest on CPU)
    model: str | None = None  # None -> qwen2.5-coder-0.5b-instruct when installed, else smollm2-135m-instruct
    base_url: str | None = None  # for the openai backend
    max_doc_chars: int = Field(2500, ge=200, le=20000, description="SOP text (code blocks dropped) shown to the LLM")
    max_new_tokens: int = Field(768, ge=32, le=2048, description="above the longest card the schema admits "
                                "(~2.3k characters of compact JSON), so a reply is never cut off")
    batch_size: int = Field(32, ge=1, description="prompts per generate() call (vLLM batches them)")
    repair: bool = True  # one repair turn for a reply that fails validation
    structured: bool = Field(True, description="decode under the card's JSON schema (vllm, openai backends; "
                             "hf ignores it); replies are validated either way")
    cache_path: str | None = None  # None -> runtime cache_dir("sopr_rag")/card_cache.jsonl
    glossary: bool = Field(True, description="component glossary at index time: per SOP the component its alert is "
                           "about, per component what it does and its aliases; feeds the component graph (the entity "
                           "expert). Source: `glossary_source`")
    glossary_source: Literal["llm", "knowledge"] = Field(
        "knowledge", description="where the glossary's components come from: `llm` asks the LLM above; `knowledge` reads "
        "the component knowledge base (cards/knowledge.py: YAML, what each part does in plain words; no LLM calls)")
    knowledge: str | None = Field(None, description="component knowledge: a YAML file or a folder of them; "
                                  "None = the packaged sopr_rag/knowledge/*.yaml")


VOTERS = ("bm25", "dense", "card_dense", "card_bm25")
DEFAULT_VOTERS = {"bm25": 1.0, "dense": 1.0, "card_dense": 1.0, "card_bm25": 0.0}
DEFAULT_EXPERT_VOTES = {"entity": 1.0, "causal": 1.0, "flow": 0.0}


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
    evidence: Literal["rrf", "zscore"] = Field(
        "rrf", description="how the evidence voters combine: rank fusion with lexical trust, or the sum of their "
        "z-scored scores (sopr_rag/evidence.py); lexical trust scales the lexical voters under either")
    z_floor: float = Field(-1.0, le=0, description="zscore: a voter's z-score never counts below this (nor does a "
                           "doc it did not list)")
    trust_k: int = Field(5, ge=0, description="lexical trust: overlap of the BM25 and dense top-k (0 = off)")
    trust_full: float = Field(0.4, ge=0, le=1, description="agreement at which lexical voters get full weight")
    trust_floor: float = Field(0.2, ge=0, le=1, description="lexical weight never drops below this")
    trust_top1_k: int = Field(0, ge=0, description="full trust when BM25's top hit is in dense's top-k (0 = off)")
    trust_margin: float = Field(1.3, ge=0, description="full trust when BM25's top score >= this x its second (0 = off)")
    cover_pin: float = Field(0.9, ge=0, le=1, description="BM25's top hit ranks first when it contains at least this "
                             "share of the query's words: the query is in that document's own words (0 = off)")
    cover_min_words: int = Field(5, ge=1, description="the coverage rule needs a query of at least this many words")
    # weighted / rrf (the first design): card stage 1 + gated experts
    stage1_weight: float = Field(0.5, ge=0, le=1, description="share of the normalised stage-1 card score")
    rrf_k: int = Field(60, ge=0)

    @field_validator("voters", "expert_votes", mode="after")
    @classmethod
    def _fill_defaults(cls, v: dict, info) -> dict:
        """A partial override (fusion.voters.card_dense=0) keeps the other defaults."""
        base = DEFAULT_VOTERS if info.field_name == "voters" else DEFAULT_EXPERT_VOTES
        if any(w < 0 for w in v.values()):
            raise ValueError(f"{info.field_name} weights must be >= 0")
        return {**base, **v}


class AnswerConfig(StrictModel):
    max_steps: int = Field(5, ge=1, le=50)
    generate: bool = False  # ask the LLM for a grounded answer (needs the gate backend)
    max_new_tokens: int = Field(200, ge=1, le=1024)


class ServeConfig(StrictModel):
    """HTTP limits of `python -m sopr_rag serve`."""

    max_body_bytes: int = Field(65536, ge=1024, le=16 * 1024 * 1024, description="larger request bodies get 413")
    generate_queue: int = Field(2, ge=1, le=64, description="/ask generations running or waiting; more get 503")
    generate_timeout_s: float = Field(60.0, gt=0, le=3600, description="an /ask generation slower than this gets 504")


class IngestConfig(StrictModel):
    """Per-document budget of `python -m sopr_rag index`: larger or slower documents are skipped with a reason."""

    max_doc_bytes: int = Field(2_000_000, ge=1, description="files larger than this are not SOPs (logs, dumps)")
    max_steps: int = Field(2000, ge=1, description="more steps than this is not one SOP (checked before embedding)")
    max_parse_seconds: float = Field(60.0, gt=0, description="a document whose parsing takes longer is skipped")


class SopragConfig(StrictModel):
    stage1: Stage1Config = Stage1Config()
    experts: ExpertConfig = ExpertConfig()
    gate: GateConfig = GateConfig()
    fusion: FusionConfig = FusionConfig()
    answer: AnswerConfig = AnswerConfig()
    cards: CardsConfig = CardsConfig()
    ingest: IngestConfig = IngestConfig()
    serve: ServeConfig = ServeConfig()
