// The small-M kernels' interface (y = x @ w^T and the SwiGLU variant for 1..kMaxRows rows of x): one table of
// row kernels per vector ISA, AVX2 (small_m_linear.cpp, every x86-64 box this project runs on) and AVX-512
// (small_m_linear_avx512.cpp), picked at run time. The kernels themselves are in small_m_kernels.h.
#pragma once

#include <cstdint>

namespace llmsys {
namespace small_m {

constexpr int kMaxRows = 16;

// y[m * N + n] for output columns n in [begin, end): x [M, K] fp32, w = weight rows (fp32, or bf16 bits)
using RowsFn = void (*)(const float* x, const void* w, float* y, int64_t N, int64_t K, int64_t begin, int64_t end);

struct Tables {  // indexed by M - 1
  RowsFn linear_f32[kMaxRows], linear_bf16[kMaxRows], swiglu_f32[kMaxRows], swiglu_bf16[kMaxRows];
};

const Tables& avx2_tables();
const Tables* avx512_tables();  // nullptr where the CPU lacks AVX-512 F/BW/VL

}  // namespace small_m
}  // namespace llmsys
