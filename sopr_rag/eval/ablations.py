"""SOPRAG ablations, opened as method `soprag[<name>]` (sopr_rag/retrievers.py): variants of the core
pipeline by a config change or a fixed gate.

    no-pruning      pruning off (experts score every procedure)
    uniform-gate    every expert weighted 1/3
    -entity/-causal/-flow   that expert's weight forced to 0 (others renormalised) and its fixed vote removed
    oracle-intent   the gold intent's expert gets the weight the gate would give a confident call
    gated-experts   evidence fusion + every expert voting with 3 x its gate weight (fusion.gated_votes = 1)
    no-trust        evidence fusion without the lexical-trust weight (fusion.trust_k = 0)
    no-card-dense   evidence fusion without the Procedure-Card dense voter
    first-design    the previous default: card stage 1 + gated experts, weighted fusion (fusion.method = weighted)
    no-proposals    the graph experts only re-rank the evidence top-M (experts.propose = 0)

With the default evidence fusion the gate only matters when experts vote through it (gated_votes > 0),
so uniform-gate / oracle-intent run with gated_votes = 1 and compare with gated-experts (the rules gate).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sopr_rag.config import SopragConfig
from sopr_rag.gate import EXPERTS, Gate
from sopr_rag.pipeline import SopragRetriever

ABLATIONS = ("no-pruning", "uniform-gate", *(f"-{e}" for e in EXPERTS), "oracle-intent", "gated-experts", "no-trust",
             "no-card-dense", "first-design", "no-proposals")


class FixedGate:
    """Gate stand-in: weights from a function of the query text (no LLM, no cache)."""

    def __init__(self, fn: Callable[[str], dict[str, float]], source: str, llm: Any = None):
        self.fn, self.source, self._llm = fn, source, llm

    def weights(self, query: str) -> tuple[dict[str, float], str]:
        return self.fn(query), self.source

    def llm(self) -> Any:
        if self._llm is None:
            raise RuntimeError(f"the '{self.source}' ablation gate has no LLM")
        return self._llm


def oracle_weights(intent: str | None, floor: float) -> dict[str, float]:
    if intent not in EXPERTS:
        return {e: 1 / len(EXPERTS) for e in EXPERTS}
    return {e: (1 - floor * (len(EXPERTS) - 1)) if e == intent else floor for e in EXPERTS}


def _gated(cfg: SopragConfig) -> SopragConfig:
    """Evidence fusion with the experts voting through the gate (compare uniform-gate / oracle-intent with it)."""
    if cfg.fusion.method != "evidence" or cfg.fusion.gated_votes > 0:
        return cfg
    return cfg.model_copy(update={"fusion": cfg.fusion.model_copy(update={"gated_votes": 1.0})})


def make_ablation(name: str, index: Any, cfg: SopragConfig, intent_of: dict[str, str | None]) -> Any:
    """A SopragRetriever configured for ablation `name`; `intent_of` maps query text -> gold intent."""
    if name == "no-pruning":
        return SopragRetriever(index, cfg.model_copy(update={"stage1": cfg.stage1.model_copy(
            update={"top_m": max(len(index.procedures), 1)})}))
    fusion = cfg.fusion
    if name == "uniform-gate":
        return SopragRetriever(index, _gated(cfg), FixedGate(lambda q: {e: 1 / len(EXPERTS) for e in EXPERTS},
                                                               "uniform"))
    if name == "gated-experts":
        return SopragRetriever(index, _gated(cfg))
    if name == "no-trust":
        return SopragRetriever(index, cfg.model_copy(update={"fusion": fusion.model_copy(update={"trust_k": 0})}))
    if name == "no-card-dense":
        voters = {**fusion.voters, "card_dense": 0.0}
        return SopragRetriever(index, cfg.model_copy(update={"fusion": fusion.model_copy(update={"voters": voters})}))
    if name == "first-design":
        return SopragRetriever(index, cfg.model_copy(update={"fusion": fusion.model_copy(update={"method": "weighted"})}))
    if name == "no-proposals":
        return SopragRetriever(index, cfg.model_copy(update={"experts": cfg.experts.model_copy(update={"propose": 0})}))
    if name.startswith("-") and name[1:] in EXPERTS:
        dropped, base = name[1:], Gate(cfg.gate)
        votes = {**fusion.expert_votes, dropped: 0.0}
        cfg = cfg.model_copy(update={"fusion": fusion.model_copy(update={"expert_votes": votes})})

        def without(q: str) -> dict[str, float]:
            w = {e: (0.0 if e == dropped else v) for e, v in base.weights(q)[0].items()}
            total = sum(w.values())
            return {e: v / total for e, v in w.items()} if total else {e: 0.0 for e in w}
        return SopragRetriever(index, cfg, FixedGate(without, f"without-{dropped}"))
    if name == "oracle-intent":
        floor = cfg.gate.weight_floor
        return SopragRetriever(index, _gated(cfg), FixedGate(lambda q: oracle_weights(intent_of.get(q), floor),
                                                               "oracle"))
    raise ValueError(f"unknown ablation '{name}'; choose from {', '.join(ABLATIONS)}")
