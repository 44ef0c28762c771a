"""Procedure Cards: rule-built for every SOP (rules.py), optionally LLM-built at index time (llm.py, schema.py);
the component glossary (glossary.py: two small LLM questions per SOP / per component) feeds the component graph."""

from sopr_rag.cards.rules import ProcedureCard, build_card
from sopr_rag.cards.schema import Component, LLMCard, parse_card

__all__ = ["Component", "LLMCard", "ProcedureCard", "build_card", "parse_card"]
