// The AVX-512 instance of the small-M kernels (small_m_kernels.h): 16 fp32 lanes and 32 zmm registers, so passes
// of up to 4 rows of x over NB = 6 weight rows. Picked at run time by small_m_linear.cpp where the CPU has
// AVX-512 F/BW/VL; the library is built with -mavx2 for every machine, so only this file's kernels are compiled
// for AVX-512 (`#pragma GCC target` below), and they are reached only after the CPU check.
//
// Why: from about 8 rows on, the small-M kernel is bound by FMA throughput rather than by the weight stream
// (16 rows = 16 FMAs per weight vector); twice the lanes halve that part of a draft-tree verification.
// Accumulation is fp32 in both instances; only the order of the additions inside a dot product differs.
#include <cstdint>
#include <utility>

#include <immintrin.h>

#include "small_m_rows.h"  // declarations, compiled for the library's ISA
#include "vec_sum.h"       // AVX2 inline code: included before the pragma, so it keeps the library's ISA

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")

#include "small_m_kernels.h"  // the kernel templates, compiled for AVX-512 here

namespace llmsys {
namespace small_m {
namespace {

struct Avx512 {
  using V = __m512;
  static constexpr int kLanes = 16, kRegs = 32;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V load(const uint16_t* p) {  // bf16 -> fp32 is the bf16 bits in the high half of a float
    const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static __m256 halves(V v) {  // the two 8-lane halves added
    return _mm256_add_ps(_mm512_castps512_ps256(v), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
  }
  static void reduce(const V* a, int n, float* out) {  // 8 at a time through hsum8: ~3 instructions a sum, not ~8
    int i = 0;
    for (; i + 8 <= n; i += 8) {
      __m256 h[8];
      for (int t = 0; t < 8; ++t) h[t] = halves(a[i + t]);
      _mm256_storeu_ps(out + i, hsum8(h));
    }
    for (; i < n; ++i) out[i] = hsum(halves(a[i]));
  }
};

Tables make_avx512_tables() { return Rows<Avx512>::make(std::make_integer_sequence<int, kMaxRows>{}); }

}  // namespace
}  // namespace small_m
}  // namespace llmsys

#pragma GCC pop_options

namespace llmsys {
namespace small_m {

const Tables* avx512_tables() {
  static const bool supported = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                                __builtin_cpu_supports("avx512vl");
  if (!supported) return nullptr;
  static const Tables tables = make_avx512_tables();  // built (and its code touched) only on such a CPU
  return &tables;
}

}  // namespace small_m
}  // namespace llmsys
