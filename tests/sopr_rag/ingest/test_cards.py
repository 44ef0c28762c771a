from __future__ import annotations

from sopr_rag.cards import build_card
from sopr_rag.ingest import parse_document


def test_near_twin_cards_differ_in_their_conditions(sop_corpus):
    a = "liquid_cooling/cdu-pump-cavitation-after-filter-change.md"
    b = "liquid_cooling/cdu-pump-cavitation-low-reservoir.md"
    ca, cb = (build_card(parse_document(d, (sop_corpus / d).read_text())) for d in (a, b))
    assert "filter" in ca.scope.lower() and "reservoir" in cb.scope.lower()
    assert any("cavitation persists" in c for c in ca.conditions)
    assert any("leak is found" in c for c in cb.conditions)
    text = ca.text()
    assert text.startswith(ca.title) and "Conditions:" in text and "Entities:" in text
    assert len(ca.step_heads) == 6
