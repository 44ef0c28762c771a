"""Procedure Cards: the condensed, fixed-layout view of one SOP that the card voters retrieve over.

A card keeps what decides *whether* a procedure applies (title, components, symptoms, scope,
conditions, causes) and only the openings of the steps, so near-twin SOPs differ on the card exactly
where they differ in the document: their conditions. Two rules make the text fit a sentence encoder:
identifiers are split into words (`etcdNoLeader` -> "etcd No Leader"), and a sentence already on the
card is not repeated (rule-parsed causes are often sentences of the scope). With an LLM card
(cards.llm), its components (with aliases and function), symptoms, conditions, causes and actions come
first: they are the plain-words description the rule parse cannot write.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, field
from pathlib import PurePosixPath

from sopr_rag.cards.schema import LLMCard
from sopr_rag.ingest.extract import sentences
from sopr_rag.retrieval.identifiers import humanize
from sopr_rag.types import Procedure

MAX_FIELD_CHARS = 400
MAX_STEP_CHARS = 90
MAX_STEPS_ON_CARD = 12


@dataclass
class ProcedureCard:
    doc_id: str
    title: str
    scope: str
    triggers: list[str]
    conditions: list[str]  # preconditions + branch conditions of steps (+ the LLM's conditions)
    causes: list[str]
    hazards: list[str]
    entities: list[str]
    step_heads: list[str]
    outcome: str
    components: list[str] = field(default_factory=list)  # "name, alias: function" (LLM card only)
    actions: list[str] = field(default_factory=list)  # LLM card only

    def text(self) -> str:
        """What BM25 and the dense encoder see. Title and plain-words fields first: MiniLM truncates.
        Entities (alert, metric, resource names as written) before the steps: plain questions quote them."""
        parts = [humanize(self.title), "Components: " + "; ".join(self.components),
                 "Symptoms: " + "; ".join(self.triggers), self.scope,
                 "Conditions: " + "; ".join(self.conditions), "Causes: " + "; ".join(self.causes),
                 "Entities: " + ", ".join(self.entities), "Actions: " + "; ".join(self.actions),
                 "Steps: " + " | ".join(self.step_heads), "Impact: " + "; ".join(self.hazards),
                 "Outcome: " + self.outcome]
        return "\n".join(p for p in parts if p and not p.endswith(": "))

    def to_dict(self) -> dict:
        return asdict(self)


def _clip(text: str, n: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " ..."


def _norm(text: str) -> str:
    return " ".join(re.findall(r"[a-z0-9]+", text.lower()))


class _Unique:
    """Keeps each sentence once across the whole card (first field wins)."""

    def __init__(self) -> None:
        self.seen: set[str] = set()

    def __call__(self, items: list[str], n: int = MAX_FIELD_CHARS) -> list[str]:
        out = []
        for item in items:
            kept = [s for s in sentences(humanize(item)) if _norm(s) and _norm(s) not in self.seen]
            self.seen.update(_norm(s) for s in kept)
            if kept:
                out.append(_clip(" ".join(kept), n))
        return out


def display_title(proc: Procedure) -> str:
    """Title, plus the file's own name when it says something else (runbooks: 'Kubelet Down' + KubeletDown)."""
    stem = humanize(PurePosixPath(proc.doc_id).stem.replace("_", " ")).replace("-", " ")
    return proc.title if _norm(stem) in _norm(humanize(proc.title)) else f"{proc.title} ({stem})"


def build_card(proc: Procedure, llm: LLMCard | None = None) -> ProcedureCard:
    uniq = _Unique()
    title = display_title(proc)
    uniq.seen.add(_norm(humanize(title)))
    components = [c.profile() for c in llm.components] if llm else []
    triggers = uniq((llm.symptoms if llm else []) + proc.triggers)
    scope = " ".join(uniq([proc.scope]))
    conditions = uniq((llm.conditions if llm else []) + proc.preconditions
                      + [s.condition for s in proc.steps if s.condition])
    causes = uniq((llm.causes if llm else []) + proc.causes)
    return ProcedureCard(
        doc_id=proc.doc_id, title=title, scope=scope, triggers=triggers, conditions=conditions, causes=causes,
        hazards=uniq(proc.hazards, 160), entities=proc.entities[:40],
        step_heads=[_clip(humanize(s.text), MAX_STEP_CHARS) for s in proc.steps[:MAX_STEPS_ON_CARD]],
        outcome=" ".join(uniq([proc.outcome], 200)), components=components,
        actions=uniq(llm.actions, 160) if llm else [],
    )
