"""Component graph: which system parts each SOP concerns, what they are called in plain words, what they do.

Per document (`build_part`, saved in the entity part): the components of its LLM card (name, aliases,
function; the first is the one the SOP is about). The corpus graph (networkx, assembled at query time
from the per-document parts, so an incremental update equals a fresh build) joins one node per
component key to the procedures that concern it; a component on more than half of the procedures
names the whole collection, not a part, and is dropped. Without LLM cards or the glossary the graph is
empty: rule parsing cannot say what a component does (folder names and title-centroid profiles were tried
as components and made dev and devsym worse as voters; README).

A query links to a component lexically (all tokens of its name or of one alias occur in the query:
confidence 1) or by meaning: the best cosine of the query to the component's profiles ("name, aliases:
function", one per SOP that lists it), top `component_links` components within `component_margin` of
the best and above `component_min_sim`. A linked component propagates to each of its procedures the
confidence of THAT procedure's own profile of it (x `SECONDARY_WEIGHT` when it is not the SOP's main
component); the sum is the procedure's score. So "the service that sends out our pages" reaches the
notifier's runbooks when their cards say it "sends alert notifications (pages, email) to receivers",
and the runbook whose card describes it in the query's words ranks first among them.

The component glossary (cards/glossary.py, `cards.glossary: true`) adds to each SOP its main component
(the one its alert is about) with a corpus-wide profile. It is corpus-level (saved beside the manifest,
index/glossary_part.py) and handed to each loaded SOP as `doc.derived[GLOSSARY_PART]`, so the graph is
still assembled per document and an incremental update equals a fresh build.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import networkx as nx
import numpy as np

from sopr_rag.cards.schema import LLMCard
from sopr_rag.config import ExpertConfig
from sopr_rag.experts.base import DocArtifacts, Query
from sopr_rag.retrieval.identifiers import humanize
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure

SECONDARY_WEIGHT = 0.5  # a component the SOP mentions beside its main one
GLOSSARY_PART = "glossary_component"  # DocArtifacts.derived key: the SOP's glossary entry + profile vector


def component_key(name: str) -> str:
    return " ".join(tokenize(humanize(name).replace("-", " ")))


def build_part(proc: Procedure, card: LLMCard | None = None) -> list[dict]:
    """[{key, name, aliases, function, primary, profile}] for one SOP; the profile texts get embedded."""
    out: list[dict] = []
    seen: set[str] = set()
    for i, c in enumerate(card.components if card else []):
        key = component_key(c.name)
        if key and key not in seen:
            seen.add(key)
            out.append({"key": key, "name": c.name, "aliases": c.aliases, "function": c.function,
                        "primary": i == 0, "profile": c.profile()})
    return out


@dataclass
class Glossary:
    """The corpus's components: entries {key, name, aliases, function, profile, docs}, their profile
    vectors (row i: entries[i]), and per SOP the name question's record {hash, answer, name, by}."""

    entries: list[dict] = field(default_factory=list)
    vectors: np.ndarray | None = None
    docs: dict[str, dict] = field(default_factory=dict)

    def attach(self, docs: dict[str, DocArtifacts]) -> None:
        """Give each SOP its entry (doc.derived), replacing what an older glossary gave it."""
        for doc in docs.values():
            doc.derived.pop(GLOSSARY_PART, None)
        for i, entry in enumerate(self.entries):
            part = {k: v for k, v in entry.items() if k != "docs"}
            part.update(primary=True, vector=self.vectors[i] if self.vectors is not None else None)
            for doc_id in entry["docs"]:
                if doc_id in docs:
                    docs[doc_id].derived[GLOSSARY_PART] = part


def doc_components(doc: DocArtifacts) -> list[tuple[dict, np.ndarray | None]]:
    """(component, profile vector) of one SOP: its LLM card's, then its glossary component."""
    vecs = doc.vectors.get("components")
    out = [(c, vecs[i] if vecs is not None and i < len(vecs) else None)
           for i, c in enumerate(doc.entity.get("components", []))]
    if GLOSSARY_PART in doc.derived:
        out.append((doc.derived[GLOSSARY_PART], doc.derived[GLOSSARY_PART]["vector"]))
    return out


class ComponentGraph:
    """Corpus-wide component <-> procedure graph; each edge keeps that SOP's profile vector of the component."""

    def __init__(self, docs: list[DocArtifacts]):
        self.graph = nx.Graph()
        self.aliases: dict[str, list[frozenset[str]]] = {}
        self.identifiers: dict[str, list[frozenset[str]]] = {}  # names the runbooks use (knowledge glossary)
        for doc in docs:
            pid = ("proc", doc.proc.doc_id)
            self.graph.add_node(pid)
            for comp, vec in doc_components(doc):
                node, weight = ("comp", comp["key"]), 1.0 if comp["primary"] else SECONDARY_WEIGHT
                if self.graph.has_edge(node, pid):  # card and glossary name the same part: the card's profile
                    self.graph.edges[node, pid]["weight"] = max(self.graph.edges[node, pid]["weight"], weight)
                else:
                    self.graph.add_edge(node, pid, vector=vec, weight=weight)
                self.aliases.setdefault(comp["key"], []).extend(
                    frozenset(tokenize(humanize(n))) for n in [comp["name"], *comp["aliases"]] if tokenize(n))
                self.identifiers.setdefault(comp["key"], []).extend(
                    frozenset(tokenize(humanize(n))) for n in comp.get("identifiers", []) if tokenize(humanize(n)))
        n_procs = max(len(docs), 1)
        for node in [n for n in self.graph if n[0] == "comp"]:
            if self.graph.degree(node) > n_procs / 2:  # on most procedures: a collection name, not a component
                self.graph.remove_node(node)
        self.keys = sorted(n[1] for n in self.graph if n[0] == "comp")
        self.vectors = [self._profiles(k) for k in self.keys]

    def _profiles(self, key: str) -> np.ndarray | None:
        vecs = [d["vector"] for _, _, d in self.graph.edges(("comp", key), data=True) if d["vector"] is not None]
        return np.stack(vecs).astype(np.float32) if vecs else None

    def named(self, query: Query) -> list[str]:
        """Components the query names by an identifier the runbooks use (all its tokens occur in the query)."""
        return [k for k in self.keys if any(i <= query.tokens for i in self.identifiers.get(k, []))]

    def link(self, query: Query, cfg: ExpertConfig) -> dict[str, float]:
        """Component key -> link confidence: lexical (1.0) or the best profile cosine, top few only."""
        links = {k: 1.0 for k in self.keys if any(a and a <= query.tokens for a in self.aliases.get(k, []))} \
            if cfg.component_alias_links else {}
        sims = [(float((v @ query.vector).max()), k) for k, v in zip(self.keys, self.vectors) if v is not None]
        sims.sort(reverse=True)
        if sims:
            top = sims[0][0]
            for s, k in sims[:cfg.component_links]:
                if s >= cfg.component_min_sim and s >= top - cfg.component_margin:
                    links[k] = max(links.get(k, 0.0), s)
        return links

    def score(self, query: Query, cfg: ExpertConfig) -> tuple[dict[str, float], dict[str, float]]:
        """(procedure -> summed confidence of its linked components, links); procedures with none are absent."""
        links = self.link(query, cfg)
        out: dict[str, float] = {}
        for key, conf in links.items():
            for _, proc, data in self.graph.edges(("comp", key), data=True):
                # a lexical link holds for every SOP; a meaning link counts as well as this SOP's own profile
                own = conf if conf >= 1.0 or data["vector"] is None else float(data["vector"] @ query.vector)
                out[proc[1]] = out.get(proc[1], 0.0) + max(own, 0.0) * data["weight"]
        return out, links

