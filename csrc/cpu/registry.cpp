// Op library schema home: every llmsys:: op is declared here, implementations register per dispatch key
// in their own files (TORCH_LIBRARY_IMPL). Python adds fake (meta) kernels and autograd in runtime/ops/.
#include <torch/library.h>

#include <string>

namespace llmsys {
int64_t abi_version() { return 1; }
namespace small_m {
std::string small_m_isa(const std::string& request);  // small_m_linear.cpp
}  // namespace small_m
}  // namespace llmsys

TORCH_LIBRARY(llmsys, m) {
  m.def("abi_version() -> int", &llmsys::abi_version);
  // Fused soft cross-entropy over a vocab, chunked with an online log-sum-exp (csrc/cpu/soft_ce.cpp).
  // loss[n] = psum[n] * lse[n] - sum_v p[n,v] * z[n,v],  z = hidden @ weight.T (never stored whole).
  // Rows with row_mask == 0 are skipped: loss 0, argmax -1, zero gradient.
  // bf16_gemm: the GEMMs in bf16 (AMX), the row statistics in fp32; float32 inputs only.
  m.def("soft_ce_fwd(Tensor hidden, Tensor weight, Tensor target_probs, Tensor? row_mask, int chunk,"
        " bool bf16_gemm=False)"
        " -> (Tensor loss, Tensor lse, Tensor psum, Tensor argmax)");
  m.def("soft_ce_bwd(Tensor grad_loss, Tensor hidden, Tensor weight, Tensor target_probs, Tensor? row_mask,"
        " Tensor lse, Tensor psum, int chunk, bool bf16_gemm=False) -> (Tensor grad_hidden, Tensor grad_weight)");
  // Same loss with p = softmax(target_hidden @ target_weight.T), both heads chunked (soft_ce_from_target.cpp).
  m.def("soft_ce_from_target_fwd(Tensor hidden, Tensor weight, Tensor target_hidden, Tensor target_weight,"
        " Tensor? row_mask, int chunk) -> (Tensor loss, Tensor lse, Tensor target_lse, Tensor argmax)");
  m.def("soft_ce_from_target_bwd(Tensor grad_loss, Tensor hidden, Tensor weight, Tensor target_hidden,"
        " Tensor target_weight, Tensor? row_mask, Tensor lse, Tensor target_lse, int chunk)"
        " -> (Tensor grad_hidden, Tensor grad_weight)");
  // Fused RMSNorm + residual add (csrc/cpu/rmsnorm_residual.cpp): s = x + residual, y = s * rstd(s) * w.
  m.def("rmsnorm_residual_fwd(Tensor x, Tensor residual, Tensor weight, float eps)"
        " -> (Tensor y, Tensor summed, Tensor rstd)");
  // y = x @ weight.T for 1..16 rows, fp32 x, fp32 or bf16 weight, inference (csrc/cpu/small_m_linear.cpp): a GEMV that
  // streams the weights once for all rows, for speculative verification where CPU GEMMs at small M cost ~1.5x a GEMV.
  m.def("small_m_linear(Tensor x, Tensor weight) -> Tensor");
  // y = silu(x @ gate.T) * (x @ up.T) with gate_up = [gate; up] ([2I, K]), 1..16 rows: a Llama MLP's first
  // half in one weight pass, without the [M, 2I] intermediate (same file).
  m.def("small_m_swiglu(Tensor x, Tensor gate_up) -> Tensor");
  // Which vector ISA the two small-M ops run ("" = ask; "avx2", "avx512" or "auto" = switch): AVX-512 where the
  // CPU has it, else AVX2 (same file; small_m_linear_avx512.cpp).
  m.def("small_m_isa(str request) -> str", &llmsys::small_m::small_m_isa);
  // Batch-1 attention of T new tokens against a preallocated KV cache (csrc/cpu/decode_attention.cpp):
  // RoPE, the new k/v written into `cache` [2, KV, C, D] at slots past.., tree mask [T, T] (None = causal).
  m.def("decode_attention(Tensor qkv, Tensor cos, Tensor sin, Tensor positions, Tensor(a!) cache, int past,"
        " Tensor? tree_mask, int heads, float scale) -> Tensor");
  m.def("rmsnorm_residual_bwd(Tensor grad_y, Tensor grad_summed, Tensor summed, Tensor weight, Tensor rstd)"
        " -> (Tensor grad_x, Tensor grad_weight)");
}
