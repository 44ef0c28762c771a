"""Fallback gate: a documented cue-word classifier over the three intents.

    entity  (what / which / where / how much: facts about components, parameters, alerts, commands)
    causal  (why / fault / cause / failing / symptoms: what is wrong and what it leads to)
    flow    (how / next / before / order / what now: the ordered steps)

weight_e = floor + (1 - 3 * floor) * p_e (1 + hits_e) / sum_k p_k (1 + hits_k), where hits_e counts
the cue patterns of intent e found in the query and p is the expert prior (GateConfig.prior: how
well each expert ranks procedures on its own; measured, see README). With p = 1 a query with no cue
gets equal weights. It is also what the LLM gate falls back to when the LLM's output cannot be parsed.
"""

from __future__ import annotations

import re

EXPERTS = ("entity", "causal", "flow")

CUES: dict[str, list[str]] = {
    "entity": [r"\bwhat (is|are|does|value|setting|limit|fluid|pressure|temperature)\b", r"\bwhich\b",
               r"\bwhere\b", r"\bhow (much|many|long|high|low)\b", r"\b(limit|threshold|setpoint|value|"
               r"parameter|metric|command|name|status|label|version)s?\b", r"\bwho\b", r"\bcan i\b"],
    "causal": [r"\bwhy\b", r"\b(cause|caused|causes|reason|root)\b", r"\b(fault|failing|fails|failed|failure|"
               r"error|errors|broken|crash\w*|stuck|trip\w*|leak\w*|keeps|alarm\w*|down)\b",
               r"\bwhat'?s (going on|wrong|happening)\b", r"\b(symptom|diagnos\w*|even though|despite)\b",
               r"\blikely\b"],
    "flow": [r"\bhow (do|to|should|can)\b", r"\b(next|then|after|afterwards|before|first|order|sequence)\b",
             r"\b(steps?|procedure|process)\b", r"\bwhat (now|should|do) (i|we)\b", r"\bwhat now\b",
             r"\b(restore|recover|reset|restart|fix|resolve|mitigate|back out|roll ?back)\b",
             r"\bwhere do i start\b"],
}
_COMPILED = {e: [re.compile(p, re.I) for p in pats] for e, pats in CUES.items()}


def cue_hits(query: str) -> dict[str, int]:
    return {e: sum(1 for p in pats if p.search(query)) for e, pats in _COMPILED.items()}


def classify(query: str, floor: float = 0.1, prior: dict[str, float] | None = None) -> dict[str, float]:
    hits = cue_hits(query)
    raw = {e: (prior or {}).get(e, 1.0) * (1 + hits[e]) for e in EXPERTS}
    total = sum(raw.values())
    return {e: floor + (1 - 3 * floor) * raw[e] / total for e in EXPERTS}
