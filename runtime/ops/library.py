"""Lazy loading of the compiled op libraries (runtime._C, runtime._C_cuda) and Triton, with reasons.

Nothing is imported at `import runtime.ops` time; the first call that needs a compiled op loads it. When a
library is absent, `why_unavailable(impl)` says why in one line (tests print it as their skip reason).
"""

from __future__ import annotations

import importlib.util
import os

import torch

# A dev build (torch.utils.cpp_extension.load) can be pointed at instead of the installed extension.
_LIBRARY_ENV = "LLMSYS_OPS_LIBRARY"
_CUDA_LIBRARY_ENV = "LLMSYS_OPS_CUDA_LIBRARY"


def _find_extension(module: str) -> str | None:
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return spec.origin if spec is not None and spec.origin and spec.origin.endswith(".so") else None


def _load_cpu_library() -> str | None:
    """Load the llmsys:: CPU op library; returns None on success, else the reason it is unavailable."""
    path = os.environ.get(_LIBRARY_ENV) or _find_extension("runtime._C")
    if path is None:
        return ("runtime._C is not built (run `make setup`, or `python setup.py build_ext --inplace`; "
                f"or point ${_LIBRARY_ENV} at a dev build)")
    try:
        torch.ops.load_library(path)
    except OSError as err:
        return f"runtime._C at {path} failed to load: {err}"
    from runtime.ops import registration  # noqa: F401  (fake kernels + autograd need the schemas loaded)
    return None


def _load_cuda_library() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device"
    reason = why_unavailable("cpu")  # the schemas live in runtime._C
    if reason:
        return reason
    path = os.environ.get(_CUDA_LIBRARY_ENV) or _find_extension("runtime._C_cuda")
    if path is None:
        return "runtime._C_cuda is not built (it is built only where torch has CUDA and nvcc is found)"
    try:
        torch.ops.load_library(path)
    except OSError as err:
        return f"runtime._C_cuda at {path} failed to load: {err}"
    return None


def _triton_reason() -> str | None:
    try:
        import triton  # noqa: F401
    except ImportError:
        return "triton is not installed"
    if torch.cuda.is_available() or os.environ.get("TRITON_INTERPRET") == "1":
        return None
    return "triton needs a CUDA device, or TRITON_INTERPRET=1 (set before triton is imported) for the CPU interpreter"


# impl -> reason (None = usable). A plain dict, not functools.lru_cache: torch.compile reads it as a
# constant instead of tracing into the loaders.
_REASONS: dict[str, str | None] = {"reference": None}
_PROBES = {"cpu": _load_cpu_library, "cuda": _load_cuda_library, "triton": _triton_reason}


def why_unavailable(impl: str) -> str | None:
    """None when `impl` can run here, else a one-line reason. Probes (and loads) once per impl."""
    if impl in _REASONS:
        return _REASONS[impl]
    if impl not in _PROBES:
        return f"unknown implementation '{impl}' (choose from reference, cpu, cuda, triton)"
    _REASONS[impl] = _PROBES[impl]()
    return _REASONS[impl]
