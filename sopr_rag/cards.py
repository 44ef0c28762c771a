"""Procedure Cards: the condensed, fixed-layout view of one SOP that stage 1 retrieves over.

A card keeps what decides *whether* a procedure applies (title, scope, triggers, conditions, causes,
entities) and only the openings of the steps, so near-twin SOPs differ on the card exactly where
they differ in the document: their conditions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

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
    conditions: list[str]  # preconditions + branch conditions of steps
    causes: list[str]
    hazards: list[str]
    entities: list[str]
    step_heads: list[str]
    outcome: str

    def text(self) -> str:
        """What BM25 and the dense encoder see. Title first: MiniLM truncates long inputs."""
        parts = [self.title, self.scope, "Triggers: " + "; ".join(self.triggers),
                 "Conditions: " + "; ".join(self.conditions), "Causes: " + "; ".join(self.causes),
                 "Entities: " + ", ".join(self.entities), "Steps: " + " | ".join(self.step_heads),
                 "Hazards: " + "; ".join(self.hazards), "Outcome: " + self.outcome]
        return "\n".join(p for p in parts if not p.endswith(": "))

    def to_dict(self) -> dict:
        return asdict(self)


def _clip(text: str, n: int = MAX_FIELD_CHARS) -> str:
    return text if len(text) <= n else text[:n].rsplit(" ", 1)[0] + " ..."


def build_card(proc: Procedure) -> ProcedureCard:
    conditions = proc.preconditions + [s.condition for s in proc.steps if s.condition]
    return ProcedureCard(
        doc_id=proc.doc_id, title=proc.title, scope=_clip(proc.scope),
        triggers=[_clip(t) for t in proc.triggers], conditions=[_clip(c) for c in conditions],
        causes=[_clip(c) for c in proc.causes], hazards=[_clip(h, 160) for h in proc.hazards],
        entities=proc.entities[:40], step_heads=[_clip(s.text, MAX_STEP_CHARS) for s in proc.steps[:MAX_STEPS_ON_CARD]],
        outcome=_clip(proc.outcome, 200),
    )
