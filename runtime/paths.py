"""Where the project keeps caches: converted models, vocab maps, gate caches, vLLM sockets."""

from __future__ import annotations

import os
from pathlib import Path

ENV_VAR = "LLMSYS_CACHE_DIR"


def cache_dir(sub: str | None = None, *, create: bool = True) -> Path:
    """Root of the project cache (never inside git).

    Order: $LLMSYS_CACHE_DIR, then $XDG_CACHE_HOME/llmsys, then ~/.cache/llmsys.
    """
    root = os.environ.get(ENV_VAR)
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = Path(xdg) / "llmsys" if xdg else Path.home() / ".cache" / "llmsys"
    path = base / sub if sub else base
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def repo_root() -> Path:
    """The checkout root (the folder holding runtime/)."""
    return Path(__file__).resolve().parent.parent


RESULTS_ENV_VAR = "LLMSYS_RESULTS_DIR"


def results_dir() -> Path:
    """Where result files go when the caller names no path: $LLMSYS_RESULTS_DIR, else ./results under the
    working directory. An installed package never writes into its source tree; the Makefile points this
    at experiments/results."""
    path = Path(os.environ.get(RESULTS_ENV_VAR) or "results")
    path.mkdir(parents=True, exist_ok=True)
    return path
