// Launchers for the CUDA soft cross-entropy row kernels (soft_ce_kernels.cu). Plain CUDA types only, so the
// .cu compiles with nvcc alone (`make check-cuda`); the torch binding is soft_ce_cuda.cpp.
#pragma once

#include <cstdint>
#include <cuda_runtime.h>

namespace llmsys {
namespace cuda {

// Per-row running stats of the online log-sum-exp, float32, one entry per active row.
struct RowStats {
  float* run_max;
  float* run_sum;
  float* run_dot;
  float* run_psum;
  float* best;
  int64_t* best_idx;
};

// dtype: 0 = float32, 1 = bfloat16 (logits and probs share it).
// Fold one chunk of logits z [rows, c] (row-major) into stats; p is read at p[row_ids[r] * stride_p + v0 + j].
cudaError_t soft_ce_fold_chunk(int dtype, const void* z, const void* p, const int64_t* row_ids, int64_t rows,
                               int64_t c, int64_t v0, int64_t stride_p, RowStats stats, cudaStream_t stream);

// Initialise stats for `rows` rows.
cudaError_t soft_ce_init_stats(RowStats stats, int64_t rows, cudaStream_t stream);

// loss/lse/psum/argmax[row_ids[r]] from the stats (outputs indexed by original row).
cudaError_t soft_ce_finish(RowStats stats, const int64_t* row_ids, int64_t rows, float* loss, float* lse,
                           float* psum, int64_t* argmax, cudaStream_t stream);

// In place: z[r, j] <- g[r] * (psum[r] * exp(z[r, j] - lse[r]) - p[row_ids[r], v0 + j]), g/lse/psum by active row.
cudaError_t soft_ce_dz(int dtype, void* z, const void* p, const int64_t* row_ids, const float* g, const float* lse,
                       const float* psum, int64_t rows, int64_t c, int64_t v0, int64_t stride_p,
                       cudaStream_t stream);

}  // namespace cuda
}  // namespace llmsys
