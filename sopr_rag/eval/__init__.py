"""Evaluation harness: retrieval, step and response-utility metrics for SOPRAG, its ablations and baselines."""
