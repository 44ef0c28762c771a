"""The one module through which csrc/ kernels (and Triton kernels) reach Python.

    from runtime.ops import soft_cross_entropy
    loss_rows, argmax = soft_cross_entropy(hidden, weight, target_probs)            # optional row_mask=

`soft_cross_entropy(hidden [..,H], weight [V,H], target_probs [..,V])` returns
  loss_rows [..] float32 = -sum_v p[n,v] * log_softmax(hidden[n] @ weight.T)[v]   (float64 for float64 input)
  argmax    [..] int64   = argmax_v (hidden[n] @ weight.T)   (no grad; -1 on rows where row_mask == 0)
with gradients to `hidden` and `weight` (target_probs is a constant). The fused implementations walk the
vocab in chunks with an online log-sum-exp, so no [N, V] logits tensor is ever built.

`soft_cross_entropy_from_target(hidden, weight, target_hidden, target_weight)` is the same loss with
p = softmax(target_hidden @ target_weight.T) (target head rows on the draft vocab), chunked for both models:
the "cpu" op (csrc/cpu/soft_ce_from_target.cpp) on CPU, chunked torch (runtime/ops/chunked.py) elsewhere.

"cpu" under `torch.autocast("cpu", dtype=torch.bfloat16)`: the op's GEMMs take bf16 copies of hidden and weight
(AMX-bf16 / AVX512-bf16 tiles, ~3.5x fp32's GEMM speed on such CPUs) while every row reduction stays fp32,
the numerics of a bf16-autocast head on GPU; outside autocast (or for bf16 inputs) it is fp32 throughout.

Implementations of soft_cross_entropy: "cpu" (csrc/cpu, runtime._C), "cuda" (csrc/cuda, runtime._C_cuda),
"triton" (runtime/ops/soft_ce_triton.py), "reference" (pure torch, materialises the logits).
Automatic choice: cuda tensors -> cuda, else triton, else reference; cpu tensors -> cpu, else reference.
`set_impl(name)` / $LLMSYS_OPS_IMPL force one (an unavailable forced impl raises with the reason).
"""

from __future__ import annotations

import os

import torch

from runtime.ops.library import why_unavailable
from runtime.ops.reference import (
    decode_attention_reference,
    rmsnorm_residual_reference,
    soft_cross_entropy_from_target_reference,
    soft_cross_entropy_reference,
)

__all__ = ["soft_cross_entropy", "soft_cross_entropy_from_target", "rmsnorm_residual", "small_m_linear",
           "use_small_m_linears", "small_m_kernel_available", "decode_linear", "decode_rmsnorm_residual", "decode_swiglu", "decode_attention", "SMALL_M_MAX", "set_impl",
           "current_impl", "why_unavailable", "soft_cross_entropy_reference", "IMPLS", "DEFAULT_CHUNK"]

IMPLS = ("reference", "cpu", "cuda", "triton")
# Vocab columns per chunk: 4096 rows x 2048 cols fp32 = 32 MiB of scratch, wide enough for efficient GEMMs;
# peak memory grows with it (runtime/ops/README.md has the sweep; its timings were too noisy to tune on).
DEFAULT_CHUNK = 2048
_IMPL_OVERRIDE: str | None = None
# The decoding ops' choice of CPU kernel, per op name, made on first use and kept (set_impl clears it): they
# run ~150 times per generated token, and re-deciding costs ~14 us each time ($LLMSYS_OPS_IMPL lookup and
# probe), ~4% of a SmolLM2 decode step. So $LLMSYS_OPS_IMPL changed after the first decode call is not seen.
_DECODE_KERNELS: dict[str, bool] = {}


def set_impl(name: str | None) -> None:
    """Force an implementation (one of IMPLS) for tests; None restores the automatic choice."""
    if name is not None and name not in IMPLS:
        raise ValueError(f"unknown soft_cross_entropy implementation '{name}'; choose from {IMPLS}")
    global _IMPL_OVERRIDE
    _IMPL_OVERRIDE = name
    _DECODE_KERNELS.clear()


def current_impl(device: torch.device | str | None = None) -> str:
    """The implementation soft_cross_entropy uses for tensors on `device` (default cpu)."""
    forced = _IMPL_OVERRIDE or os.environ.get("LLMSYS_OPS_IMPL")
    if forced:
        return forced
    kind = torch.device(device).type if device is not None else "cpu"
    preferred = ("cuda", "triton") if kind == "cuda" else ("cpu",) if kind == "cpu" else ()
    for impl in preferred:
        if why_unavailable(impl) is None:
            return impl
    return "reference"


def _require(impl: str) -> None:
    reason = why_unavailable(impl)
    if reason is not None:
        raise RuntimeError(f"soft_cross_entropy implementation '{impl}' is unavailable: {reason}")


def _fused_soft_ce(impl, hidden, weight, target_probs, row_mask, chunk):
    if impl == "triton":
        from runtime.ops.soft_ce_triton import soft_cross_entropy_triton
        return soft_cross_entropy_triton(hidden, weight, target_probs, row_mask, chunk)
    want = "cuda" if impl == "cuda" else "cpu"
    if hidden.device.type != want:
        raise ValueError(f"implementation '{impl}' needs {want} tensors, got {hidden.device}")
    bf16_gemm = False
    if impl == "cpu":
        # Autocast does not reach a custom op; it is read here, as autocast's own ops do.
        bf16_gemm = cpu_autocast_bf16() and hidden.dtype != torch.float64
        if hidden.dtype not in (torch.float32, torch.float64):
            # The CPU kernel computes in fp32/fp64; autograd casts the gradients back.
            hidden, weight, target_probs = hidden.float(), weight.float(), target_probs.float()
    target_probs = target_probs.to(hidden.dtype)
    loss, _lse, _psum, argmax = torch.ops.llmsys.soft_ce_fwd(hidden, weight, target_probs, row_mask, chunk,
                                                             bf16_gemm)
    return loss, argmax


def cpu_autocast_bf16() -> bool:
    """Whether CPU autocast to bfloat16 is active here (the cpu soft-CE op then runs its GEMMs in bf16)."""
    return torch.is_autocast_enabled("cpu") and torch.get_autocast_dtype("cpu") == torch.bfloat16


def soft_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, target_probs: torch.Tensor,
                       row_mask: torch.Tensor | None = None,
                       chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-row soft cross-entropy of draft logits (hidden @ weight.T) against target_probs; see module doc."""
    if target_probs.requires_grad:
        raise ValueError("soft_cross_entropy treats target_probs as a constant; pass target_probs.detach()")
    lead = hidden.shape[:-1]
    if target_probs.shape[:-1] != lead or target_probs.shape[-1] != weight.shape[0]:
        raise ValueError(f"target_probs must be {tuple(lead) + (weight.shape[0],)}, got {tuple(target_probs.shape)}")
    impl = current_impl(hidden.device)
    if impl == "reference":
        return soft_cross_entropy_reference(hidden, weight, target_probs, row_mask)
    _require(impl)
    h2 = hidden.reshape(-1, hidden.shape[-1])
    p2 = target_probs.reshape(-1, weight.shape[0])
    mask = None if row_mask is None else row_mask.reshape(-1).to(torch.bool)
    loss, argmax = _fused_soft_ce(impl, h2, weight, p2, mask, chunk)
    return loss.reshape(lead), argmax.reshape(lead)


def soft_cross_entropy_from_target(hidden: torch.Tensor, weight: torch.Tensor, target_hidden: torch.Tensor,
                                   target_weight: torch.Tensor, row_mask: torch.Tensor | None = None,
                                   chunk: int = DEFAULT_CHUNK) -> tuple[torch.Tensor, torch.Tensor]:
    """soft_cross_entropy with p = softmax(target_hidden @ target_weight.T), never forming either [N, V]."""
    impl = current_impl(hidden.device)
    if impl == "reference":
        return soft_cross_entropy_from_target_reference(hidden, weight, target_hidden, target_weight, row_mask)
    lead = hidden.shape[:-1]
    h2, th2 = hidden.reshape(-1, hidden.shape[-1]), target_hidden.detach().reshape(-1, target_hidden.shape[-1])
    mask = None if row_mask is None else row_mask.reshape(-1).to(torch.bool)
    same_dtype = hidden.dtype == weight.dtype == target_hidden.dtype == target_weight.dtype
    if impl == "cpu" and hidden.device.type == "cpu" and hidden.dtype in (torch.float32, torch.float64) and same_dtype:
        _require("cpu")
        loss, _lse, _t_lse, argmax = torch.ops.llmsys.soft_ce_from_target_fwd(
            h2, weight, th2, target_weight.detach(), mask, chunk)
    else:  # cuda / triton / other dtypes: the chunked torch version (same memory bound, any device)
        from runtime.ops.chunked import soft_cross_entropy_from_target_chunked
        loss, argmax = soft_cross_entropy_from_target_chunked(h2, weight, th2, target_weight, mask, chunk)
    return loss.reshape(lead), argmax.reshape(lead)


def rmsnorm_residual(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                     eps: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """(rmsnorm(x + residual) * weight, x + residual): the fused pre-norm step of a decoder layer."""
    impl = current_impl(x.device)
    if impl == "cpu" and x.dtype in (torch.float32, torch.float64):
        _require("cpu")
        y, summed, _rstd = torch.ops.llmsys.rmsnorm_residual_fwd(x, residual, weight, eps)
        return y, summed
    return rmsnorm_residual_reference(x, residual, weight, eps)


SMALL_M_MAX = 16  # rows the small-M kernel handles (csrc kMaxRows); larger inputs go to the regular GEMM


def _small_m_rows(x: torch.Tensor, weight: torch.Tensor) -> int:
    """Rows of x if the small-M kernel applies to (x, weight) — fp32 CPU, 1..SMALL_M_MAX rows, no autograd — else 0."""
    rows = x.numel() // x.shape[-1] if x.shape[-1] else 0
    fits = (1 <= rows <= SMALL_M_MAX and x.device.type == "cpu" and x.dtype == weight.dtype == torch.float32
            and not (torch.is_grad_enabled() and (x.requires_grad or weight.requires_grad)))
    return rows if fits else 0


def _small_m_call(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
    rows = _small_m_rows(x, weight)
    if not rows:
        return torch.nn.functional.linear(x, weight, bias)
    y = torch.ops.llmsys.small_m_linear(x.reshape(rows, x.shape[-1]), weight).reshape(*x.shape[:-1], weight.shape[0])
    return y if bias is None else y + bias


def _small_m_available() -> bool:
    return current_impl("cpu") == "cpu" and why_unavailable("cpu") is None


def small_m_isa(request: str = "") -> str:
    """The vector ISA of the small-M kernels: "avx512" where the CPU has AVX-512 F/BW/VL, else "avx2"
    (`LLMSYS_SMALL_M_ISA=avx2` keeps AVX2). `request` "avx2" / "avx512" switches it (tests run both), "auto"
    returns to that run-time choice, "" asks. Empty when the CPU library is unavailable."""
    if not _small_m_available() or not hasattr(torch.ops.llmsys, "small_m_isa"):
        return ""
    return torch.ops.llmsys.small_m_isa(request)


def small_m_kernel_available() -> bool:
    """The csrc/cpu small-M kernel serves decode_linear / decode_swiglu (also with bf16 weights)."""
    return _small_m_available()


def small_m_linear(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """F.linear for inference on a few rows: the csrc/cpu small-M kernel (weights streamed once for all
    rows) for fp32 CPU inputs with 1..SMALL_M_MAX rows and no autograd, else torch's F.linear."""
    if not _small_m_available():
        return torch.nn.functional.linear(x, weight, bias)
    return _small_m_call(x, weight, bias)


def _has_cpu_op(name: str) -> bool:
    """The CPU library is in use and has op `name` (builds of runtime._C older than the op lack it)."""
    return _small_m_available() and hasattr(torch.ops.llmsys, name)


def _decode_kernel(name: str) -> bool:
    """`_has_cpu_op(name)`, decided once (see _DECODE_KERNELS)."""
    ok = _DECODE_KERNELS.get(name)
    if ok is None:
        ok = _DECODE_KERNELS[name] = _has_cpu_op(name)
    return ok


def _decode_ready(x: torch.Tensor) -> bool:
    return x.dtype == torch.float32 and x.device.type == "cpu"


# Decoding ops: called hundreds of times per generated token, so they skip the per-call checks of the ops
# above. Their contract: inference only (no autograd), and x [M, K] 2-D; anything the CPU kernels do not
# take (other devices or dtypes, M > SMALL_M_MAX) runs in torch with the same result.
def decode_linear(x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """x @ weight.T: the small-M kernel for 1..SMALL_M_MAX fp32 CPU rows, else F.linear. `weight` may be
    bf16 with fp32 x (exact widening, fp32 accumulation): half the bytes for a bf16 checkpoint."""
    if x.shape[0] <= SMALL_M_MAX and _decode_ready(x) and _decode_kernel("small_m_linear"):
        return torch.ops.llmsys.small_m_linear(x, weight)
    return torch.nn.functional.linear(x, weight.to(x.dtype))


def decode_swiglu(x: torch.Tensor, gate_up: torch.Tensor) -> torch.Tensor:
    """silu(x @ gate.T) * (x @ up.T) for gate_up = [gate; up] ([2I, K]): one weight pass, no [M, 2I] buffer."""
    if x.shape[0] <= SMALL_M_MAX and _decode_ready(x) and _decode_kernel("small_m_swiglu"):
        return torch.ops.llmsys.small_m_swiglu(x, gate_up)
    gu = torch.nn.functional.linear(x, gate_up.to(x.dtype))
    inner = gate_up.shape[0] // 2
    return torch.nn.functional.silu(gu[:, :inner]) * gu[:, inner:]


def decode_rmsnorm_residual(x: torch.Tensor, residual: torch.Tensor, weight: torch.Tensor,
                            eps: float) -> tuple[torch.Tensor, torch.Tensor]:
    """`rmsnorm_residual` for decoding (inference, fp32 CPU through the kernel, else the reference)."""
    if _decode_ready(x) and _decode_kernel("rmsnorm_residual_fwd"):
        y, summed, _rstd = torch.ops.llmsys.rmsnorm_residual_fwd(x, residual, weight, eps)
        return y, summed
    return rmsnorm_residual_reference(x, residual, weight, eps)


def decode_attention(qkv: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor,
                     cache: torch.Tensor, past: int, tree_mask: torch.Tensor | None, heads: int,
                     scale: float) -> torch.Tensor:
    """Batch-1 attention of T new tokens against a preallocated KV cache; writes their keys/values into
    `cache` [2, KV, C, D] at slots past..past+T-1. See csrc/cpu/decode_attention.cpp for the arguments."""
    if _decode_ready(qkv) and cache.is_contiguous() and _decode_kernel("decode_attention"):
        return torch.ops.llmsys.decode_attention(qkv, cos, sin, positions, cache, past, tree_mask, heads, scale)
    return decode_attention_reference(qkv, cos, sin, positions, cache, past, tree_mask, heads, scale)


def use_small_m_linears(model: torch.nn.Module) -> int:
    """Route every nn.Linear of `model` through `small_m_linear` (same results within fp32 rounding; falls
    back to F.linear outside its range). For CPU decoding engines; returns the number of layers routed
    (0 when the CPU op library is unavailable or another implementation is forced: nothing changes)."""
    if not _small_m_available():  # decided once here, not on every forward of every layer
        return 0
    count = 0
    for module in model.modules():
        if type(module) is torch.nn.Linear and not getattr(module, "_llmsys_small_m", False):
            module.forward = lambda x, m=module: _small_m_call(x, m.weight, m.bias)
            module._llmsys_small_m = True
            count += 1
    return count
