// y[M, N] = x[M, K] @ w[N, K]^T for a few rows (M <= 8), fp32, inference only.
//
// Why: verifying a draft tree runs the target on M = 2..16 tokens. A CPU GEMM packs weight panels on every
// call, and at such small M the packing costs more than the math: on the 2-core AVX2 box a SmolLM2 forward
// over 2..8 tokens takes ~1.5x a 1-token (GEMV) forward (speculative/evaluate/profile.py). This kernel is a
// GEMV that streams each weight row from memory once and dots it with all M rows of x (kept in L1), so
// its cost stays close to the memory traffic of one GEMV for every M <= 8.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

namespace llmsys {
namespace {

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_shuffle_ps(s, s, 0x55));
  return _mm_cvtss_f32(s);
}

template <int M>
void rows(const float* x, const float* w, float* y, int64_t N, int64_t K, int64_t begin, int64_t end) {
  for (int64_t n = begin; n < end; ++n) {
    const float* wr = w + n * K;
    __m256 acc[M];
    for (int m = 0; m < M; ++m) acc[m] = _mm256_setzero_ps();
    int64_t k = 0;
    for (; k + 8 <= K; k += 8) {
      const __m256 wv = _mm256_loadu_ps(wr + k);
      for (int m = 0; m < M; ++m) acc[m] = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + m * K + k), acc[m]);
    }
    for (int m = 0; m < M; ++m) {
      float tot = hsum(acc[m]);
      for (int64_t t = k; t < K; ++t) tot += wr[t] * x[m * K + t];
      y[m * N + n] = tot;
    }
  }
}

using RowsFn = void (*)(const float*, const float*, float*, int64_t, int64_t, int64_t, int64_t);
constexpr RowsFn kRows[8] = {rows<1>, rows<2>, rows<3>, rows<4>, rows<5>, rows<6>, rows<7>, rows<8>};

at::Tensor small_m_linear_cpu(const at::Tensor& x, const at::Tensor& weight) {
  TORCH_CHECK(x.dim() == 2 && weight.dim() == 2, "small_m_linear: x [M, K] and weight [N, K] must be 2-D");
  TORCH_CHECK(x.scalar_type() == at::kFloat && weight.scalar_type() == at::kFloat,
              "small_m_linear: float32 only (got ", x.scalar_type(), ", ", weight.scalar_type(), ")");
  const int64_t M = x.size(0), K = x.size(1), N = weight.size(0);
  TORCH_CHECK(weight.size(1) == K, "small_m_linear: x has K=", K, " but weight has ", weight.size(1));
  TORCH_CHECK(M >= 1 && M <= 8, "small_m_linear: 1 <= M <= 8 rows, got ", M);
  const at::Tensor xc = x.contiguous(), wc = weight.contiguous();
  at::Tensor y = at::empty({M, N}, x.options());
  const float* xp = xc.data_ptr<float>();
  const float* wp = wc.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  const RowsFn fn = kRows[M - 1];
  at::parallel_for(0, N, 64, [&](int64_t begin, int64_t end) { fn(xp, wp, yp, N, K, begin, end); });
  return y;
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) { m.impl("small_m_linear", &llmsys::small_m_linear_cpu); }
