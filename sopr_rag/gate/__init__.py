"""LLM-guided expert gate with a cue-word fallback classifier and a persistent cache."""

from sopr_rag.gate.classifier import EXPERTS, classify
from sopr_rag.gate.llm_gate import Gate, parse_weights

__all__ = ["EXPERTS", "Gate", "classify", "parse_weights"]
