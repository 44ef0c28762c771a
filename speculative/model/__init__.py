"""EAGLE-3 draft model: config derived from the target, the draft module, and the TTT attention mask."""

from speculative.model.draft import DraftKVCache, Eagle3Draft, Eagle3DraftConfig

__all__ = ["DraftKVCache", "Eagle3Draft", "Eagle3DraftConfig"]
