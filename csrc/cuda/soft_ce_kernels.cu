// CUDA row kernels of the fused soft cross-entropy. The chunk GEMMs run in cuBLAS (via at::mm in
// soft_ce_cuda.cpp); these kernels do the memory-bound part: one pass over each [rows, chunk] logits tile
// folding it into online log-sum-exp stats (forward), or turning it into dz in place (backward).
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cfloat>
#include <cstdint>

#include "soft_ce_kernels.h"

namespace llmsys {
namespace cuda {
namespace {

constexpr int kThreads = 256;

__device__ __forceinline__ float to_float(float x) { return x; }
__device__ __forceinline__ float to_float(__nv_bfloat16 x) { return __bfloat162float(x); }
template <typename T> __device__ __forceinline__ T from_float(float x);
template <> __device__ __forceinline__ float from_float<float>(float x) { return x; }
template <> __device__ __forceinline__ __nv_bfloat16 from_float<__nv_bfloat16>(float x) { return __float2bfloat16(x); }

// Block-wide reduction of (max, argmax, sum-terms) in shared memory.
struct Partial {
  float max;
  int64_t arg;
  float dot;
  float psum;
};

template <typename T>
__global__ void fold_chunk_kernel(const T* __restrict__ z, const T* __restrict__ p, const int64_t* __restrict__ row_ids,
                                  int64_t c, int64_t v0, int64_t stride_p, RowStats stats) {
  const int64_t r = blockIdx.x;
  const T* zr = z + r * c;
  const T* pr = p + row_ids[r] * stride_p + v0;
  __shared__ Partial part[kThreads];
  __shared__ float sums[kThreads];
  Partial mine{-FLT_MAX, 0, 0.f, 0.f};
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) {
    const float zj = to_float(zr[j]), pj = to_float(pr[j]);
    if (zj > mine.max) { mine.max = zj; mine.arg = j; }
    mine.dot += pj * zj;
    mine.psum += pj;
  }
  part[threadIdx.x] = mine;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      Partial& a = part[threadIdx.x];
      const Partial& b = part[threadIdx.x + s];
      if (b.max > a.max || (b.max == a.max && b.arg < a.arg)) { a.max = b.max; a.arg = b.arg; }
      a.dot += b.dot;
      a.psum += b.psum;
    }
    __syncthreads();
  }
  const float old_max = stats.run_max[r];
  const float new_max = fmaxf(old_max, part[0].max);
  float e = 0.f;
  for (int64_t j = threadIdx.x; j < c; j += blockDim.x) e += __expf(to_float(zr[j]) - new_max);
  sums[threadIdx.x] = e;
  __syncthreads();
  for (int s = blockDim.x / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) sums[threadIdx.x] += sums[threadIdx.x + s];
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    stats.run_sum[r] = stats.run_sum[r] * __expf(old_max - new_max) + sums[0];
    stats.run_max[r] = new_max;
    stats.run_dot[r] += part[0].dot;
    stats.run_psum[r] += part[0].psum;
    if (part[0].max > stats.best[r]) { stats.best[r] = part[0].max; stats.best_idx[r] = v0 + part[0].arg; }
  }
}

__global__ void init_stats_kernel(RowStats stats, int64_t rows) {
  const int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= rows) return;
  stats.run_max[r] = -INFINITY;
  stats.best[r] = -INFINITY;
  stats.run_sum[r] = stats.run_dot[r] = stats.run_psum[r] = 0.f;
  stats.best_idx[r] = 0;
}

__global__ void finish_kernel(RowStats stats, const int64_t* __restrict__ row_ids, int64_t rows, float* loss, float* lse,
                              float* psum, int64_t* argmax) {
  const int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const int64_t n = row_ids[r];
  const float row_lse = stats.run_max[r] + logf(stats.run_sum[r]);
  lse[n] = row_lse;
  psum[n] = stats.run_psum[r];
  loss[n] = stats.run_psum[r] * row_lse - stats.run_dot[r];
  argmax[n] = stats.best_idx[r];
}

template <typename T>
__global__ void dz_kernel(T* __restrict__ z, const T* __restrict__ p, const int64_t* __restrict__ row_ids,
                          const float* __restrict__ g, const float* __restrict__ lse, const float* __restrict__ psum,
                          int64_t rows, int64_t c, int64_t v0, int64_t stride_p) {
  const int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (i >= rows * c) return;
  const int64_t r = i / c, j = i - r * c;
  const float prob = to_float(p[row_ids[r] * stride_p + v0 + j]);
  z[i] = from_float<T>(g[r] * (psum[r] * __expf(to_float(z[i]) - lse[r]) - prob));
}

int64_t blocks_for(int64_t n) { return (n + kThreads - 1) / kThreads; }

}  // namespace

cudaError_t soft_ce_fold_chunk(int dtype, const void* z, const void* p, const int64_t* row_ids, int64_t rows,
                               int64_t c, int64_t v0, int64_t stride_p, RowStats stats, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  if (dtype == 0) {
    fold_chunk_kernel<float><<<rows, kThreads, 0, stream>>>(static_cast<const float*>(z), static_cast<const float*>(p),
                                                            row_ids, c, v0, stride_p, stats);
  } else {
    fold_chunk_kernel<__nv_bfloat16><<<rows, kThreads, 0, stream>>>(
        static_cast<const __nv_bfloat16*>(z), static_cast<const __nv_bfloat16*>(p), row_ids, c, v0, stride_p, stats);
  }
  return cudaGetLastError();
}

cudaError_t soft_ce_init_stats(RowStats stats, int64_t rows, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  init_stats_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(stats, rows);
  return cudaGetLastError();
}

cudaError_t soft_ce_finish(RowStats stats, const int64_t* row_ids, int64_t rows, float* loss, float* lse,
                           float* psum, int64_t* argmax, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  finish_kernel<<<blocks_for(rows), kThreads, 0, stream>>>(stats, row_ids, rows, loss, lse, psum, argmax);
  return cudaGetLastError();
}

cudaError_t soft_ce_dz(int dtype, void* z, const void* p, const int64_t* row_ids, const float* g, const float* lse,
                       const float* psum, int64_t rows, int64_t c, int64_t v0, int64_t stride_p,
                       cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  const int64_t n = rows * c;
  if (dtype == 0) {
    dz_kernel<float><<<blocks_for(n), kThreads, 0, stream>>>(static_cast<float*>(z), static_cast<const float*>(p),
                                                             row_ids, g, lse, psum, rows, c, v0, stride_p);
  } else {
    dz_kernel<__nv_bfloat16><<<blocks_for(n), kThreads, 0, stream>>>(
        static_cast<__nv_bfloat16*>(z), static_cast<const __nv_bfloat16*>(p), row_ids, g, lse, psum, rows, c, v0,
        stride_p);
  }
  return cudaGetLastError();
}

}  // namespace cuda
}  // namespace llmsys
