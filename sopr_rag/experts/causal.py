"""Causal expert: a section graph per SOP (symptom / condition / cause -> action), scored by how far the query reaches.

Nodes per procedure, from the sections a runbook or SOP writes and from the LLM card when there is one:

    condition  title, each sentence of the scope / Meaning, preconditions, branch conditions, LLM conditions
    symptom    triggers, each sentence of the Impact / hazards (observable effects), LLM symptoms
    cause      stated causes, sub-headings of a Diagnosis section ("Slow disk issue"), LLM causes
    action     the steps (guarded ones through their condition), sub-headings of a Mitigation section, LLM actions

Edges: symptom -> cause -> action, condition -> the step it guards, symptom -> action when no cause is
written. A node is activated by its cosine to the query; a chain scores the mean activation of its
evidence nodes and the procedure its best chain, plus `causal_facet_weight` x the activation of the best
node of a second kind (a query describing both what is seen and when it happens reaches two facets).

Near-twins (same symptoms, different conditions) share most evidence; the contrast term separates
them: query-token overlap with the procedure's condition/cause text, weighted by IDF computed inside
the candidate set, so words every twin shares count little and the distinguishing condition counts most.

`propose` ranks the WHOLE corpus by the chains alone (no contrast), so a procedure every lexical and
dense voter missed can still become a candidate when its symptoms match.
"""

from __future__ import annotations

import math
import re
from collections import Counter

import numpy as np

from sopr_rag.cards.schema import LLMCard
from sopr_rag.config import ExpertConfig
from sopr_rag.experts.base import DocArtifacts, Query, cosines
from sopr_rag.ingest.extract import sentences
from sopr_rag.retrieval.identifiers import humanize
from sopr_rag.retrieval.lexical import tokenize
from sopr_rag.types import Procedure

MAX_NODE_CHARS = 300
MAX_SENTENCES = 6  # per section: the opening sentences carry the description
KINDS = ("condition", "symptom", "cause", "action")


_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*$")
_DIAGNOSIS = ("diagnos", "cause", "troubleshoot", "investigat", "why")
_MITIGATION = ("mitigat", "resolution", "remediat", "fix", "recovery", "workaround", "action")
_GENERIC = frozenset({"other", "others", "general", "misc", "notes", "overview", "summary", "example", "examples"})


def sub_headings(text: str) -> dict[str, list[str]]:
    """{"cause": [...], "action": [...]}: headings nested under a Diagnosis- / Mitigation-like heading.

    Troubleshooting runbooks name a cause per diagnosis sub-section ("Slow disk issue") and a remedy per
    mitigation sub-section ("Data retention"); the sub-heading is the shortest statement of either.
    """
    out: dict[str, list[str]] = {"cause": [], "action": []}
    stack: list[tuple[int, str | None]] = []  # (level, kind of the section it opens)
    for line in re.sub(r"```.*?```", "", text, flags=re.S).splitlines():
        m = _HEADING.match(line.strip())
        if not m:
            continue
        level, title = len(m.group(1)), m.group(2).strip()
        while stack and stack[-1][0] >= level:
            stack.pop()
        low = title.lower()
        own = "cause" if any(k in low for k in _DIAGNOSIS) else "action" if any(k in low for k in _MITIGATION) \
            else None
        parent = next((k for _, k in reversed(stack) if k), None)
        if parent and not own and len(title.split()) <= 10 and low not in _GENERIC:
            out[parent].append(title)
        stack.append((level, own or parent))
    return out


def build_part(proc: Procedure, card: LLMCard | None = None) -> dict:
    nodes: list[dict] = []

    def add(kind: str, text: str, step: int | None = None) -> int:
        nodes.append({"kind": kind, "text": humanize(text)[:MAX_NODE_CHARS], "step": step})
        return len(nodes) - 1

    llm = card or LLMCard()
    symptoms = [add("symptom", t) for t in proc.triggers + llm.symptoms]
    symptoms += [add("symptom", s) for h in proc.hazards for s in sentences(h)[:MAX_SENTENCES]]
    if not symptoms:
        symptoms = [add("symptom", s) for s in sentences(proc.scope)[:2]]
    symptoms.append(add("symptom", proc.title))
    heads = sub_headings(proc.text)
    causes = [add("cause", c) for c in proc.causes + llm.causes + heads["cause"]]
    edges: list[list[int]] = []
    for s in symptoms:
        edges += [[s, c] for c in causes]
    conditions = [add("condition", p) for p in proc.preconditions + llm.conditions]
    conditions += [add("condition", s) for s in sentences(proc.scope)[:MAX_SENTENCES]]
    for i, step in enumerate(proc.steps):
        if step.condition:
            edges.append([add("condition", step.condition, step=i), -1 - i])  # negative = action node of step i
    if proc.steps:
        for src in (causes or symptoms) + conditions:
            edges.append([src, -1])  # the procedure's first step acts on every chain
    for a in llm.actions + heads["action"]:  # what the procedure does (LLM card, remedy sub-headings)
        node = add("action", a)
        edges += [[c, node] for c in causes] or [[node, node]]
    return {"nodes": nodes, "edges": edges, "contrast_tokens": sorted(set(tokenize(" ".join(
        [proc.title, proc.scope] + proc.triggers + proc.preconditions + proc.causes + llm.conditions + llm.causes
        + [s.condition for s in proc.steps if s.condition]))))}


def _pruned_idf(docs: list[DocArtifacts]) -> dict[str, float]:
    df = Counter(t for d in docs for t in d.causal["contrast_tokens"])
    n = len(docs)
    return {t: math.log((n + 1) / (c + 0.5)) for t, c in df.items()}


def _prepared(doc: DocArtifacts) -> dict:
    """Edge endpoints and node kinds as arrays, computed once per loaded document."""
    if "causal" not in doc.derived:
        edges = np.asarray(doc.causal["edges"], dtype=np.int64).reshape(-1, 2)
        kinds = [n["kind"] for n in doc.causal["nodes"]]
        doc.derived["causal"] = {"src": edges[:, 0], "dst": edges[:, 1],
                                 "kinds": [np.flatnonzero([k == kind for k in kinds]) for kind in KINDS]}
    return doc.derived["causal"]


def chains(query: Query, doc: DocArtifacts, cfg: ExpertConfig) -> tuple[float, list[int]]:
    """(best chain + facet bonus, step indices the activated chains reach) for one procedure."""
    act = np.clip(cosines(query, doc.vectors.get("causal")), 0.0, None)
    if len(act) != len(doc.causal["nodes"]) or not len(act):
        return 0.0, []
    prep = _prepared(doc)
    src, dst = prep["src"], prep["dst"]
    to_node = dst >= 0  # node -> node: evidence is both ends; node -> action: the source alone
    chain = np.where(to_node, (act[src] + act[np.where(to_node, dst, 0)]) / 2.0, act[src])
    best = float(chain.max()) if len(chain) else float(act.max())
    steps = sorted(set((-1 - dst[~to_node & (act[src] > 0.5)]).tolist()))
    facets = sorted((float(act[ix].max()) for ix in prep["kinds"] if len(ix)), reverse=True)
    second = facets[1] if len(facets) > 1 else 0.0
    return best + cfg.causal_facet_weight * second, steps


def score(query: Query, docs: list[DocArtifacts], cfg: ExpertConfig) -> tuple[dict[str, float], dict[str, list[int]]]:
    """(procedure -> causal score, procedure -> step indices its activated chains reach)."""
    idf = _pruned_idf(docs)
    q_idf = sum(idf.get(t, 0.0) for t in query.tokens)
    scores: dict[str, float] = {}
    reached: dict[str, list[int]] = {}
    for doc in docs:
        best, steps = chains(query, doc, cfg)
        contrast = sum(idf[t] for t in query.tokens & set(doc.causal["contrast_tokens"])) / q_idf if q_idf > 0 else 0.0
        scores[doc.proc.doc_id] = best + cfg.causal_contrast_weight * contrast
        reached[doc.proc.doc_id] = steps
    return scores, reached


def propose(query: Query, docs: list[DocArtifacts], cfg: ExpertConfig, n: int) -> list[str]:
    """The n procedures of the whole corpus whose chains the query activates most."""
    if n <= 0:
        return []
    ranked = sorted(((chains(query, d, cfg)[0], d.proc.doc_id) for d in docs), key=lambda t: (-t[0], t[1]))
    return [d for _, d in ranked[:n]]
