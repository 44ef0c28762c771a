// y[M, N] = x[M, K] @ w[N, K]^T for a few rows (M <= 16), fp32 x and output, inference only; and the SwiGLU
// variant y[M, I] = silu(x @ gate^T) * (x @ up^T) with w = [gate; up] ([2I, K]), which a Llama MLP runs per
// token. Weights are fp32 or bf16: a bf16 weight is widened to fp32 exactly (a 16-bit shift) and everything
// is accumulated in fp32, so a bf16 checkpoint (the shipped EAGLE-3 draft) runs at its own values while half
// the bytes stream from memory, which is what a GEMV at small M costs.
//
// Why: verifying a draft tree runs the target on M = 2..16 tokens. A CPU GEMM packs weight panels on every
// call, and at such small M the packing costs more than the math: on the 2-core AVX2 box a SmolLM2 forward
// over 2..8 tokens takes ~1.5x a 1-token (GEMV) forward (speculative/evaluate/profile.py). This kernel is a
// GEMV that streams each weight row from memory once and dots it with all M rows of x (kept in L1), so
// its cost stays close to the memory traffic of one GEMV for every M <= 8. Draft trees of 9..16 nodes used to
// fall back to the GEMM at 2.3-2.7x a 1-token forward (its packing again); here M = 16 does 16 FMAs per weight
// vector, about what 2 AVX2 cores can do while the weights stream, so it stays well below that.
// The blocking is in small_m_kernels.h, written once over the vector ISA. This file holds the AVX2 instance
// (16 ymm registers: passes of <= 3 rows over NB = 4 weight rows, loads per FMA <= 0.75 for M >= 2; one row at
// a time at M = 8 it was 9/8, load-bound at ~6 weight bytes/cycle) and the op, which runs the AVX-512 instance
// (small_m_linear_avx512.cpp: 32 zmm, 16 lanes) where the CPU has it: from about 8 rows on the kernel is bound
// by FMA throughput rather than by the weight stream, and twice the lanes halve that part.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <cstdlib>
#include <string>

#include "small_m_kernels.h"
#include "vec_sum.h"

namespace llmsys {
namespace small_m {
namespace {

struct Avx2 {
  using V = __m256;
  static constexpr int kLanes = 8, kRegs = 16;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V load(const uint16_t* p) {  // bf16 -> fp32 is the bf16 bits in the high half of a float
    const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
  }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static void reduce(const V* a, int n, float* out) {
    int i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, hsum8(a + i));
    for (; i < n; ++i) out[i] = hsum(a[i]);
  }
};

}  // namespace

const Tables& avx2_tables() {
  static const Tables tables = Rows<Avx2>::make(std::make_integer_sequence<int, kMaxRows>{});
  return tables;
}

namespace {

// The ISA the ops run; nullptr = decide on the next call: AVX-512 where the CPU has it, unless
// LLMSYS_SMALL_M_ISA=avx2 (small_m_isa() switches it).
const Tables* g_tables = nullptr;

const Tables& tables() {
  if (g_tables == nullptr) {
    const char* env = std::getenv("LLMSYS_SMALL_M_ISA");
    const bool avx2_only = env != nullptr && std::string(env) == "avx2";
    g_tables = (!avx2_only && avx512_tables() != nullptr) ? avx512_tables() : &avx2_tables();
  }
  return *g_tables;
}

// Runs fn over output columns [0, cols) in parallel; returns y [M, cols].
// fns: the float32-weight table, bf16_fns: the bf16-weight one.
at::Tensor run(const char* name, const at::Tensor& x, const at::Tensor& weight, int64_t cols, const RowsFn* fns,
               const RowsFn* bf16_fns) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2, name, ": x [M, K] and weight [N, K] must be 2-D");
  const bool bf16 = weight.scalar_type() == at::kBFloat16;
  TORCH_CHECK(x.scalar_type() == at::kFloat && (weight.scalar_type() == at::kFloat || bf16),
              name, ": float32 x with float32 or bfloat16 weight only (got ", x.scalar_type(), ", ",
              weight.scalar_type(), ")");
  const int64_t M = x.size(0), K = x.size(1);
  TORCH_CHECK(weight.size(1) == K, name, ": x has K=", K, " but weight has ", weight.size(1));
  TORCH_CHECK(M >= 1 && M <= kMaxRows, name, ": 1 <= M <= ", kMaxRows, " rows, got ", M);
  const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor y = at::empty({M, cols}, x.options());
  const float* xp = xc.data_ptr<float>();
  const void* wp = wc.data_ptr();
  float* yp = y.data_ptr<float>();
  const RowsFn fn = (bf16 ? bf16_fns : fns)[M - 1];
  // 64 columns per task: big enough to amortize the task, small enough to split a 576-wide layer in 9
  at::parallel_for(0, cols, 64, [&](int64_t begin, int64_t end) { fn(xp, wp, yp, cols, K, begin, end); });
  return y;
}

at::Tensor small_m_linear_cpu(const at::Tensor& x, const at::Tensor& weight) {
  return run("small_m_linear", x, weight, weight.size(0), tables().linear_f32, tables().linear_bf16);
}

at::Tensor small_m_swiglu_cpu(const at::Tensor& x, const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.dim() == 2 && gate_up.size(0) % 2 == 0, "small_m_swiglu: gate_up must be [2I, K]");
  return run("small_m_swiglu", x, gate_up, gate_up.size(0) / 2, tables().swiglu_f32, tables().swiglu_bf16);
}

}  // namespace

// "" = which ISA runs now; "avx2" / "avx512" = switch to it (tests compare both); "auto" = back to the
// run-time choice of tables().
std::string small_m_isa(const std::string& request) {
  if (request == "avx2") {
    g_tables = &avx2_tables();
  } else if (request == "avx512") {
    TORCH_CHECK(avx512_tables() != nullptr, "small_m_isa: this CPU has no AVX-512 F/BW/VL");
    g_tables = avx512_tables();
  } else if (request == "auto") {
    g_tables = nullptr;
  } else {
    TORCH_CHECK(request.empty(), "small_m_isa: expected '', 'auto', 'avx2' or 'avx512', got '", request, "'");
  }
  return &tables() == &avx2_tables() ? "avx2" : "avx512";
}

}  // namespace small_m
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) {
  m.impl("small_m_linear", &llmsys::small_m::small_m_linear_cpu);
  m.impl("small_m_swiglu", &llmsys::small_m::small_m_swiglu_cpu);
}
