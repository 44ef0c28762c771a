// exp over a row of logits, vectorised with AVX2 for float32.
// Why hand-written: GCC only vectorises expf under -ffast-math, which would also break the inf/NaN
// semantics the online log-sum-exp relies on; ATen's Vectorized<float>::exp is not reachable from an
// extension without its CPU_CAPABILITY build machinery. The polynomial is the classic Cephes expf
// (relative error ~2e-7 on [-87, 0], the only range we call it on: arguments are z - max <= 0).
#pragma once

#include <cmath>
#include <cstdint>

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define LLMSYS_HAVE_AVX2_EXP 1
#endif

namespace llmsys {

#ifdef LLMSYS_HAVE_AVX2_EXP
inline __m256 exp_avx2(__m256 x) {
  // Clamp below so 2^n stays a normal float; exp(-87) ~ 1.6e-38 is 0 for every sum we form.
  x = _mm256_max_ps(x, _mm256_set1_ps(-87.0f));
  x = _mm256_min_ps(x, _mm256_set1_ps(88.0f));
  __m256 n = _mm256_floor_ps(_mm256_fmadd_ps(x, _mm256_set1_ps(1.44269504088896341f), _mm256_set1_ps(0.5f)));
  // r = x - n ln2, ln2 split in two parts for accuracy.
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  __m256i pow2 = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_mul_ps(y, _mm256_castsi256_ps(pow2));
}

inline float hsum_avx2(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_hadd_ps(s, s);
  s = _mm_hadd_ps(s, s);
  return _mm_cvtss_f32(s);
}
#endif

// sum_j exp(z[j] - shift)
template <typename scalar_t>
inline double sum_exp_shifted(const scalar_t* z, int64_t n, scalar_t shift) {
  double acc = 0.0;
  for (int64_t j = 0; j < n; ++j) acc += std::exp(static_cast<double>(z[j] - shift));
  return acc;
}

// z[j] <- exp(z[j] - shift)
template <typename scalar_t>
inline void exp_shifted_inplace(scalar_t* z, int64_t n, scalar_t shift) {
  for (int64_t j = 0; j < n; ++j) z[j] = std::exp(z[j] - shift);
}

#ifdef LLMSYS_HAVE_AVX2_EXP
template <>
inline double sum_exp_shifted<float>(const float* z, int64_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  __m256 acc = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) acc = _mm256_add_ps(acc, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(z + j), s)));
  double total = hsum_avx2(acc);
  for (; j < n; ++j) total += std::exp(static_cast<double>(z[j] - shift));
  return total;
}

template <>
inline void exp_shifted_inplace<float>(float* z, int64_t n, float shift) {
  const __m256 s = _mm256_set1_ps(shift);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(z + j, exp_avx2(_mm256_sub_ps(_mm256_loadu_ps(z + j), s)));
  for (; j < n; ++j) z[j] = std::exp(z[j] - shift);
}
#endif

}  // namespace llmsys
