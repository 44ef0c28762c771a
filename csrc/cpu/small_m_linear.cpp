// y[M, N] = x[M, K] @ w[N, K]^T for a few rows (M <= 8), fp32, inference only; and the SwiGLU variant
// y[M, I] = silu(x @ gate^T) * (x @ up^T) with w = [gate; up] ([2I, K]), which a Llama MLP runs per token.
//
// Why: verifying a draft tree runs the target on M = 2..16 tokens. A CPU GEMM packs weight panels on every
// call, and at such small M the packing costs more than the math: on the 2-core AVX2 box a SmolLM2 forward
// over 2..8 tokens takes ~1.5x a 1-token (GEMV) forward (speculative/evaluate/profile.py). This kernel is a
// GEMV that streams each weight row from memory once and dots it with all M rows of x (kept in L1), so
// its cost stays close to the memory traffic of one GEMV for every M <= 8.
// NB weight rows are dotted at once so that NB * M independent FMA chains hide the FMA latency (one row at
// M = 1 is a single dependent chain: latency-bound at ~1/4 of the load rate); NB * M <= 8 keeps the
// accumulators and the M x vectors in the 16 AVX2 registers.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <cmath>

namespace llmsys {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

// out[j * M + m] = <w[j], x[m]> for NB weight rows w[j] (K floats each) and M rows of x (row stride K).
template <int M, int NB>
inline void dot_block(const float* x, const float* const* w, int64_t K, float* out) {
  __m256 acc[NB][M];
  for (int j = 0; j < NB; ++j)
    for (int m = 0; m < M; ++m) acc[j][m] = _mm256_setzero_ps();
  int64_t k = 0;
  for (; k + 8 <= K; k += 8) {
    __m256 xv[M];
    for (int m = 0; m < M; ++m) xv[m] = _mm256_loadu_ps(x + m * K + k);
    for (int j = 0; j < NB; ++j) {
      const __m256 wv = _mm256_loadu_ps(w[j] + k);
      for (int m = 0; m < M; ++m) acc[j][m] = _mm256_fmadd_ps(wv, xv[m], acc[j][m]);
    }
  }
  for (int j = 0; j < NB; ++j)
    for (int m = 0; m < M; ++m) {
      float tot = hsum(acc[j][m]);
      for (int64_t t = k; t < K; ++t) tot += w[j][t] * x[m * K + t];
      out[j * M + m] = tot;
    }
}

constexpr int rows_per_block(int M) { return M == 1 ? 8 : M == 2 ? 4 : M <= 4 ? 2 : 1; }

// dot_block over NB rows in register-sized pieces.
template <int M, int NB>
inline void dots(const float* x, const float* const* w, int64_t K, float* out) {
  constexpr int B = rows_per_block(M) < NB ? rows_per_block(M) : NB;
  static_assert(NB % B == 0, "row blocks must tile NB");
  for (int j = 0; j < NB; j += B) dot_block<M, B>(x, w + j, K, out + j * M);
}

// Plain linear: weight rows [begin, end).
template <int M>
void linear_rows(const float* x, const float* w, float* y, int64_t N, int64_t K, int64_t begin, int64_t end) {
  constexpr int NB = rows_per_block(M);
  float out[NB * M];
  int64_t n = begin;
  for (; n + NB <= end; n += NB) {
    const float* rows[NB];
    for (int j = 0; j < NB; ++j) rows[j] = w + (n + j) * K;
    dot_block<M, NB>(x, rows, K, out);
    for (int j = 0; j < NB; ++j)
      for (int m = 0; m < M; ++m) y[m * N + n + j] = out[j * M + m];
  }
  for (; n < end; ++n) {
    const float* row = w + n * K;
    dot_block<M, 1>(x, &row, K, out);
    for (int m = 0; m < M; ++m) y[m * N + n] = out[m];
  }
}

inline float silu_mul(float g, float u) { return g / (1.0f + std::exp(-g)) * u; }

// SwiGLU: output columns [begin, end) of I, each from gate row i and up row I + i.
template <int M>
void swiglu_rows(const float* x, const float* w, float* y, int64_t I, int64_t K, int64_t begin, int64_t end) {
  constexpr int NB = rows_per_block(M) >= 2 ? rows_per_block(M) : 2;  // P (gate, up) row pairs per block
  constexpr int P = NB / 2;
  float out[NB * M];
  int64_t i = begin;
  for (; i + P <= end; i += P) {
    const float* rows[NB];
    for (int j = 0; j < P; ++j) rows[j] = w + (i + j) * K, rows[P + j] = w + (I + i + j) * K;
    dots<M, NB>(x, rows, K, out);
    for (int j = 0; j < P; ++j)
      for (int m = 0; m < M; ++m) y[m * I + i + j] = silu_mul(out[j * M + m], out[(P + j) * M + m]);
  }
  for (; i < end; ++i) {
    const float* rows[2] = {w + i * K, w + (I + i) * K};
    dots<M, 2>(x, rows, K, out);
    for (int m = 0; m < M; ++m) y[m * I + i] = silu_mul(out[m], out[M + m]);
  }
}

using RowsFn = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t);
constexpr RowsFn kLinear[8] = {linear_rows<1>, linear_rows<2>, linear_rows<3>, linear_rows<4>,
                               linear_rows<5>, linear_rows<6>, linear_rows<7>, linear_rows<8>};
constexpr RowsFn kSwiglu[8] = {swiglu_rows<1>, swiglu_rows<2>, swiglu_rows<3>, swiglu_rows<4>,
                               swiglu_rows<5>, swiglu_rows<6>, swiglu_rows<7>, swiglu_rows<8>};

// Runs fn over output columns [0, cols) in parallel; returns y [M, cols].
at::Tensor run(const char* name, const at::Tensor& x, const at::Tensor& weight, int64_t cols, RowsFn const* fns) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2, name, ": x [M, K] and weight [N, K] must be 2-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat,
              name, ": float32 only (got ", x.scalar_type(), ", ", weight.scalar_type(), ")");
  const int64_t M = x.size(0), K = x.size(1);
  TORCH_CHECK(weight.size(1) == K, name, ": x has K=", K, " but weight has ", weight.size(1));
  TORCH_CHECK(M >= 1 && M <= 8, name, ": 1 <= M <= 8 rows, got ", M);
  const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor y = at::empty({M, cols}, x.options());
  const float* xp = xc.data_ptr<float>();
  const float* wp = wc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const RowsFn fn = fns[M - 1];
  // 64 columns per task: big enough to amortize the task, small enough to split a 576-wide layer in 9
  at::parallel_for(0, cols, 64, [&](int64_t begin, int64_t end) { fn(xp, wp, yp, cols, K, begin, end); });
  return y;
}

at::Tensor small_m_linear_cpu(const at::Tensor& x, const at::Tensor& weight) {
  return run("small_m_linear", x, weight, weight.size(0), kLinear);
}

at::Tensor small_m_swiglu_cpu(const at::Tensor& x, const at::Tensor& gate_up) {
  TORCH_CHECK(gate_up.dim() == 2 && gate_up.size(0) % 2 == 0, "small_m_swiglu: gate_up must be [2I, K]");
  return run("small_m_swiglu", x, gate_up, gate_up.size(0) / 2, kSwiglu);
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) {
  m.impl("small_m_linear", &llmsys::small_m_linear_cpu);
  m.impl("small_m_swiglu", &llmsys::small_m_swiglu_cpu);
}
