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
// Register blocking (AVX2 has 16 ymm registers): NB weight rows are dotted at once with a pass of P rows of x
// (M > 4 runs passes of at most 3 over the same NB = 4 rows, the later ones from L1; the rows are spread
// evenly, 7 = 3 + 2 + 2 rather than 3 + 3 + 1, because a 1-row pass has only NB FMA chains). The x vectors are loaded once
// per pass and reused NB times, so loads per FMA are (NB + P) / (NB * P) <= 0.75 for M >= 2 (one row at a
// time at M = 8 it was 9/8: load-bound at ~6 weight bytes/cycle), and NB * P >= 8 independent FMA chains
// hide the FMA latency (at M = 1 a single row would be one dependent chain).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <array>
#include <cmath>
#include <utility>

#include "vec_sum.h"

namespace llmsys {
namespace {

inline __m256 load8(const float* p) { return _mm256_loadu_ps(p); }
inline __m256 load8(const at::BFloat16* p) {  // bf16 -> fp32 is the bf16 bits in the high half of a float
  const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

// out[j * stride + m] = <w[j], x[m]> for NB weight rows w[j] (K floats each) and P rows of x (row stride K).
template <int P, int NB, typename W>
__attribute__((always_inline)) inline void dot_block(const float* x, const W* const* w, int64_t K,
                                                     float* out, int64_t stride) {
  constexpr int A = NB * P;
  __m256 acc[NB][P];
  for (int j = 0; j < NB; ++j)
    for (int m = 0; m < P; ++m) acc[j][m] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 xv[P];
    for (int m = 0; m < P; ++m) {
      xv[m] = _mm256_loadu_ps(x + m * K + k);
      asm("" : "+x"(xv[m]));  // keep it in a register: GCC would re-load it as an FMA memory operand per row
    }
    for (int j = 0; j < NB; ++j) {
      // the next block's rows follow these in memory: ask for them while this block computes (at M > 2 the
      // block is compute-bound long enough for the hardware prefetcher alone to fall behind)
      if ((k & 15) == 0) _mm_prefetch(reinterpret_cast<const char*>(w[j] + k + NB * K), _MM_HINT_T0);
      const __m256 wv = load8(w[j] + k);
      for (int m = 0; m < P; ++m) acc[j][m] = _mm256_fmadd_ps(wv, xv[m], acc[j][m]);
    }
  }
  float sums[A];
  const __m256* flat = &acc[0][0];
  int a = 0;
  for (; a + 8 <= A; a += 8) _mm256_storeu_ps(sums + a, hsum8(flat + a));
  for (; a < A; ++a) sums[a] = hsum(flat[a]);
  for (int j = 0; j < NB; ++j)
    for (int m = 0; m < P; ++m) {
      float tot = sums[j * P + m];
      for (int64_t t = k; t < K; ++t) tot += static_cast<float>(w[j][t]) * x[m * K + t];
      out[j * stride + m] = tot;
    }
}

constexpr int kMaxRows = 16;

// Rows of x in the pass that starts at row DONE: all of them for M <= 4, else passes of at most 3 rows with
// the remaining rows spread evenly over the passes still to run.
constexpr int pass_rows(int M, int DONE = 0) {
  if (M <= 4) return M;
  const int left = M - DONE, passes = (left + 2) / 3;
  return (left + passes - 1) / passes;
}
constexpr int block_rows(int M) {  // NB: NB * P accumulators + P x vectors + 1 weight vector <= 16 registers
  return M == 1 ? 8 : M == 4 ? 2 : 4;
}

// out[j * M + m] = <w[j], x[m]> for all M rows of x, in passes of pass_rows(M, .) over the same NB weight rows.
template <int M, int NB, int DONE = 0, typename W>
inline void dots(const float* x, const W* const* w, int64_t K, float* out) {
  constexpr int P = pass_rows(M, DONE);
  static_assert(P >= 1 && NB * P + P + 1 <= 16, "register budget");
  dot_block<P, NB>(x + DONE * K, w, K, out + DONE, M);
  if constexpr (DONE + P < M) dots<M, NB, DONE + P>(x, w, K, out);
}

// Plain linear: weight rows [begin, end) (w points at W elements).
template <int M, typename W>
void linear_rows(const float* x, const void* wv, float* y, int64_t N, int64_t K, int64_t begin, int64_t end) {
  const W* w = static_cast<const W*>(wv);
  constexpr int NB = block_rows(M);
  float out[NB * M];
  int64_t n = begin;
  for (; n + NB <= end; n += NB) {
    const W* rows[NB];
    for (int j = 0; j < NB; ++j) rows[j] = w + (n + j) * K;
    dots<M, NB>(x, rows, K, out);
    for (int j = 0; j < NB; ++j)
      for (int m = 0; m < M; ++m) y[m * N + n + j] = out[j * M + m];
  }
  for (; n < end; ++n) {
    const W* row = w + n * K;
    dots<M, 1>(x, &row, K, out);
    for (int m = 0; m < M; ++m) y[m * N + n] = out[m];
  }
}

inline float silu_mul(float g, float u) { return g / (1.0f + std::exp(-g)) * u; }

// SwiGLU: output columns [begin, end) of I, each from gate row i and up row I + i (NB is even: NB / 2 pairs).
template <int M, typename W>
void swiglu_rows(const float* x, const void* wv, float* y, int64_t I, int64_t K, int64_t begin, int64_t end) {
  const W* w = static_cast<const W*>(wv);
  constexpr int NB = block_rows(M), PAIRS = NB / 2;
  float out[NB * M];
  int64_t i = begin;
  for (; i + PAIRS <= end; i += PAIRS) {
    const W* rows[NB];
    for (int j = 0; j < PAIRS; ++j) rows[j] = w + (i + j) * K, rows[PAIRS + j] = w + (I + i + j) * K;
    dots<M, NB>(x, rows, K, out);
    for (int j = 0; j < PAIRS; ++j)
      for (int m = 0; m < M; ++m) y[m * I + i + j] = silu_mul(out[j * M + m], out[(PAIRS + j) * M + m]);
  }
  for (; i < end; ++i) {
    const W* rows[2] = {w + i * K, w + (I + i) * K};
    dots<M, 2>(x, rows, K, out);
    for (int m = 0; m < M; ++m) y[m * I + i] = silu_mul(out[m], out[M + m]);
  }
}

using RowsFn = void (*)(const float*, const void*, float*, int64_t, int64_t, int64_t, int64_t);

// kernel tables indexed by M - 1, for M = 1..kMaxRows
template <typename W, int... I>
constexpr std::array<RowsFn, sizeof...(I)> linear_table(std::integer_sequence<int, I...>) {
  return {linear_rows<I + 1, W>...};
}
template <typename W, int... I>
constexpr std::array<RowsFn, sizeof...(I)> swiglu_table(std::integer_sequence<int, I...>) {
  return {swiglu_rows<I + 1, W>...};
}
template <typename W>
constexpr auto kLinear = linear_table<W>(std::make_integer_sequence<int, kMaxRows>{});
template <typename W>
constexpr auto kSwiglu = swiglu_table<W>(std::make_integer_sequence<int, kMaxRows>{});

// Runs fn over output columns [0, cols) in parallel; returns y [M, cols].
// fns: the float32-weight table, bf16_fns: the bf16-weight one.
using RowsTable = std::array<RowsFn, kMaxRows>;
at::Tensor run(const char* name, const at::Tensor& x, const at::Tensor& weight, int64_t cols, const RowsTable& fns,
               const RowsTable& bf16_fns) {
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
  return run("small_m_linear", x, weight, weight.size(0), kLinear<float>, kLinear<at::BFloat16>);
}

at::Tensor small_m_swiglu_cpu(const at::Tensor& x, const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.dim() == 2 && gate_up.size(0) % 2 == 0, "small_m_swiglu: gate_up must be [2I, K]");
  return run("small_m_swiglu", x, gate_up, gate_up.size(0) / 2, kSwiglu<float>, kSwiglu<at::BFloat16>);
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) {
  m.impl("small_m_linear", &llmsys::small_m_linear_cpu);
  m.impl("small_m_swiglu", &llmsys::small_m_swiglu_cpu);
}
