"""Speculative decoding engine: KV-cached target verification of chain / EAGLE-2 tree drafts.

Pipeline order: config -> tree (draft trees) -> drafters (model, lookup, hybrid) -> target (verification,
KV commit) -> accept -> engine (the loop and the autoregressive baseline) -> evaluate/ (benchmarks, metrics,
vLLM baselines).
"""

from speculative.decode.config import DecodeConfig
from speculative.decode.drafters import LMDrafter
from speculative.decode.engine import DecodeResult, DecodeStats, SpeculativeEngine
from speculative.decode.hybrid import HybridDrafter
from speculative.decode.lookup import LookupDrafter
from speculative.decode.target import TargetRunner

__all__ = ["DecodeConfig", "DecodeResult", "DecodeStats", "HybridDrafter", "LMDrafter", "LookupDrafter",
           "SpeculativeEngine", "TargetRunner"]
