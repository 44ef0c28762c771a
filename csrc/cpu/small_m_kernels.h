// The small-M kernels, written once over a vector ISA (see small_m_rows.h for the tables they fill).
//
// No ATen or standard-library inline code here: the AVX-512 file compiles this header under
// `#pragma GCC target("avx512...")`, and an inline function it shared with the rest of the library could be
// merged by the linker into code that runs on AVX2-only machines. Each file passes its own ISA struct from an
// anonymous namespace, so every instantiation below has internal linkage.
//
// Blocking: NB weight rows are dotted at once with a pass of P rows of x held in registers. NB * P
// accumulators + P x vectors + 1 weight vector fit the ISA's register file (16 ymm / 32 zmm); the x vectors are
// loaded once per pass and reused NB times, and NB * P >= 8 independent FMA chains hide the FMA latency. More
// rows than one pass holds run further passes over the same NB weight rows (now in L1), the rows spread evenly
// over the passes (7 = 3 + 2 + 2 rather than 3 + 3 + 1: a 1-row pass has only NB chains).
#pragma once

#include <cstdint>
#include <utility>  // std::integer_sequence (no code)

#include "small_m_rows.h"

namespace llmsys {
namespace small_m {

// Isa: V (vector type), kLanes, kRegs, zero(), load(const float*), load(const uint16_t*) (bf16 bits -> fp32),
// fma(a, b, c) = a * b + c, reduce(const V* a, int n, float* out) (horizontal sums of n vectors).
template <class Isa>
struct Rows {
  using V = typename Isa::V;
  static constexpr int L = Isa::kLanes;

  // rows of x in the pass that starts at row done: one pass when it fits, else passes of at most max_pass() rows
  static constexpr int max_pass() { return Isa::kRegs == 16 ? 3 : 4; }
  static constexpr int pass_rows(int M, int done) {
    if (M <= 4) return M;
    const int left = M - done, passes = (left + max_pass() - 1) / max_pass();
    return (left + passes - 1) / passes;
  }
  static constexpr int block_rows(int M) {  // NB, even (SwiGLU takes gate/up pairs), at most 8
    const int p = M <= 4 ? M : max_pass();
    const int nb = (Isa::kRegs - 1 - p) / p;
    return M == 1 ? 8 : (nb > 8 ? 8 : nb) & ~1;
  }

  static inline float widen(float v) { return v; }
  static inline float widen(uint16_t v) {
    const uint32_t bits = static_cast<uint32_t>(v) << 16;
    float f;
    __builtin_memcpy(&f, &bits, sizeof f);
    return f;
  }

  // the last K % L elements of a row, zero-padded to a full vector (rare: the models' K are multiples of 16)
  template <typename T>
  static inline V load_tail(const T* p, int64_t n) {
    float buf[L] = {};
    for (int64_t t = 0; t < n; ++t) buf[t] = widen(p[t]);
    return Isa::load(static_cast<const float*>(buf));
  }

  // out[j * stride + m] = <w[j], x[m]> for NB weight rows w[j] (K elements each) and P rows of x (stride K)
  template <int P, int NB, typename W>
  static __attribute__((always_inline)) inline void dot_block(const float* x, const W* const* w, int64_t K,
                                                              float* out, int64_t stride) {
    V acc[NB][P];
    for (int j = 0; j < NB; ++j)
      for (int m = 0; m < P; ++m) acc[j][m] = Isa::zero();
    int64_t k = 0;
    for (; k + L <= K; k += L) {
      V xv[P];
      for (int m = 0; m < P; ++m) {
        xv[m] = Isa::load(x + m * K + k);
        asm("" : "+v"(xv[m]));  // keep it in a register: GCC would re-load it as an FMA memory operand per row
      }
      for (int j = 0; j < NB; ++j) {
        // the next block's rows follow these in memory: ask for them, one cache line per 64 bytes of row, while
        // this block computes (at larger P it is compute-bound long enough for the prefetcher to fall behind)
        if (((k * sizeof(W)) & 63) == 0) __builtin_prefetch(w[j] + k + NB * K, 0, 3);
        const V wv = Isa::load(w[j] + k);
        for (int m = 0; m < P; ++m) acc[j][m] = Isa::fma(wv, xv[m], acc[j][m]);
      }
    }
    if (k < K) {
      for (int j = 0; j < NB; ++j) {
        const V wv = load_tail(w[j] + k, K - k);
        for (int m = 0; m < P; ++m) acc[j][m] = Isa::fma(wv, load_tail(x + m * K + k, K - k), acc[j][m]);
      }
    }
    float sums[NB * P];
    Isa::reduce(&acc[0][0], NB * P, sums);
    for (int j = 0; j < NB; ++j)
      for (int m = 0; m < P; ++m) out[j * stride + m] = sums[j * P + m];
  }

  // out[j * M + m] = <w[j], x[m]> for all M rows of x, pass by pass over the same NB weight rows
  template <int M, int NB, int DONE = 0, typename W>
  static inline void dots(const float* x, const W* const* w, int64_t K, float* out) {
    constexpr int P = pass_rows(M, DONE);
    static_assert(P >= 1 && NB * P + P + 1 <= Isa::kRegs, "register budget");
    dot_block<P, NB>(x + DONE * K, w, K, out + DONE, M);
    if constexpr (DONE + P < M) dots<M, NB, DONE + P>(x, w, K, out);
  }

  template <int M, typename W>
  static void linear(const float* x, const void* wv, float* y, int64_t N, int64_t K, int64_t begin, int64_t end) {
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

  static inline float silu_mul(float g, float u) { return g / (1.0f + __builtin_expf(-g)) * u; }

  // SwiGLU: output columns [begin, end) of I, each from gate row i and up row I + i (NB / 2 pairs per block)
  template <int M, typename W>
  static void swiglu(const float* x, const void* wv, float* y, int64_t I, int64_t K, int64_t begin, int64_t end) {
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

  template <int... I>
  static Tables make(std::integer_sequence<int, I...>) {
    return Tables{{&linear<I + 1, float>...}, {&linear<I + 1, uint16_t>...},
                  {&swiglu<I + 1, float>...}, {&swiglu<I + 1, uint16_t>...}};
  }
};

}  // namespace small_m
}  // namespace llmsys
