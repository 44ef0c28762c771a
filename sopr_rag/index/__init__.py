"""Persistent, incrementally updated SOPRAG index."""

from sopr_rag.index.store import SopIndex, SopIndexError, UpdateReport

__all__ = ["SopIndexError", "SopIndex", "UpdateReport"]
