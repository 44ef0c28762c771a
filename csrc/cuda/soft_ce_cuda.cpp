// CUDA dispatch of llmsys::soft_ce_fwd / soft_ce_bwd: same algorithm as csrc/cpu/soft_ce.cpp, with the chunk
// GEMMs in cuBLAS (at::mm) and the row passes in soft_ce_kernels.cu. Supports float32 and bfloat16 inputs;
// statistics and loss are float32.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "soft_ce_kernels.h"

namespace llmsys {
namespace {

void check_cuda(cudaError_t err, const char* what) {
  TORCH_CHECK(err == cudaSuccess, what, " failed: ", cudaGetErrorString(err));
}

int dtype_code(const at::Tensor& t) {
  TORCH_CHECK(t.scalar_type() == at::kFloat || t.scalar_type() == at::kBFloat16,
              "soft_ce CUDA op supports float32/bfloat16, got ", t.scalar_type());
  return t.scalar_type() == at::kFloat ? 0 : 1;
}

void check_shapes(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& probs, int64_t chunk) {
  TORCH_CHECK(hidden.is_cuda() && weight.is_cuda() && probs.is_cuda(), "soft_ce CUDA op: tensors must be on CUDA");
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && probs.dim() == 2 && hidden.size(1) == weight.size(1) &&
                  probs.size(0) == hidden.size(0) && probs.size(1) == weight.size(0),
              "soft_ce: expected hidden [N,H], weight [V,H], target_probs [N,V]");
  TORCH_CHECK(hidden.scalar_type() == weight.scalar_type() && hidden.scalar_type() == probs.scalar_type(),
              "soft_ce: hidden, weight and target_probs must share a dtype");
  TORCH_CHECK(chunk > 0, "soft_ce: chunk must be positive");
}

at::Tensor active_rows(const at::Tensor& hidden, const std::optional<at::Tensor>& row_mask) {
  if (!row_mask.has_value()) return at::arange(hidden.size(0), hidden.options().dtype(at::kLong));
  return row_mask->ne(0).nonzero().view(-1).contiguous();
}

// bf16_gemm is the CPU op's switch; on CUDA bf16 inputs already run bf16 GEMMs (tensor cores).
void check_no_bf16_gemm(bool bf16_gemm) {
  TORCH_CHECK(!bf16_gemm, "soft_ce: bf16_gemm is a CPU option; pass bf16 tensors on CUDA");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> soft_ce_fwd_cuda(
    const at::Tensor& hidden_in, const at::Tensor& weight_in, const at::Tensor& probs_in,
    const std::optional<at::Tensor>& row_mask, int64_t chunk, bool bf16_gemm) {
  check_shapes(hidden_in, weight_in, probs_in, chunk);
  check_no_bf16_gemm(bf16_gemm);
  const int code = dtype_code(hidden_in);
  c10::cuda::CUDAGuard guard(hidden_in.device());
  const at::Tensor weight = weight_in.contiguous(), probs = probs_in.contiguous();
  const int64_t N = hidden_in.size(0), V = weight.size(0);
  const auto f32 = hidden_in.options().dtype(at::kFloat);
  at::Tensor loss = at::zeros({N}, f32), lse = at::zeros({N}, f32), psum = at::zeros({N}, f32);
  at::Tensor argmax = at::full({N}, -1, hidden_in.options().dtype(at::kLong));
  const at::Tensor rows = active_rows(hidden_in, row_mask);
  const int64_t na = rows.size(0);
  if (na == 0) return {loss, lse, psum, argmax};
  const at::Tensor h = hidden_in.index_select(0, rows).contiguous();
  at::Tensor state = at::empty({5, na}, f32);
  at::Tensor best_idx = at::empty({na}, hidden_in.options().dtype(at::kLong));
  cuda::RowStats stats{state[0].data_ptr<float>(), state[1].data_ptr<float>(), state[2].data_ptr<float>(),
                       state[3].data_ptr<float>(), state[4].data_ptr<float>(), best_idx.data_ptr<int64_t>()};
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  check_cuda(cuda::soft_ce_init_stats(stats, na, stream), "soft_ce_init_stats");
  at::Tensor flat = at::empty({na * std::min(chunk, V)}, hidden_in.options());
  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    at::Tensor z = flat.narrow(0, 0, na * c).view({na, c});
    at::mm_out(z, h, weight.narrow(0, v0, c).t());
    check_cuda(cuda::soft_ce_fold_chunk(code, z.data_ptr(), probs.data_ptr(), rows.data_ptr<int64_t>(), na, c, v0,
                                        probs.stride(0), stats, stream),
               "soft_ce_fold_chunk");
  }
  check_cuda(cuda::soft_ce_finish(stats, rows.data_ptr<int64_t>(), na, loss.data_ptr<float>(), lse.data_ptr<float>(),
                                  psum.data_ptr<float>(), argmax.data_ptr<int64_t>(), stream),
             "soft_ce_finish");
  return {loss, lse, psum, argmax};
}

std::tuple<at::Tensor, at::Tensor> soft_ce_bwd_cuda(const at::Tensor& grad_loss, const at::Tensor& hidden_in,
                                                    const at::Tensor& weight_in, const at::Tensor& probs_in,
                                                    const std::optional<at::Tensor>& row_mask, const at::Tensor& lse,
                                                    const at::Tensor& psum, int64_t chunk, bool bf16_gemm) {
  check_shapes(hidden_in, weight_in, probs_in, chunk);
  check_no_bf16_gemm(bf16_gemm);
  const int code = dtype_code(hidden_in);
  c10::cuda::CUDAGuard guard(hidden_in.device());
  const at::Tensor weight = weight_in.contiguous(), probs = probs_in.contiguous();
  const int64_t V = weight.size(0);
  at::Tensor grad_hidden = at::zeros_like(hidden_in);
  at::Tensor grad_weight = at::zeros_like(weight);
  const at::Tensor rows = active_rows(hidden_in, row_mask);
  const int64_t na = rows.size(0);
  if (na == 0) return {grad_hidden, grad_weight};
  const at::Tensor h = hidden_in.index_select(0, rows).contiguous();
  const at::Tensor g = grad_loss.index_select(0, rows).to(at::kFloat).contiguous();
  const at::Tensor row_lse = lse.index_select(0, rows).to(at::kFloat).contiguous();
  const at::Tensor row_psum = psum.index_select(0, rows).to(at::kFloat).contiguous();
  at::Tensor gh = at::zeros_like(h);
  at::Tensor flat = at::empty({na * std::min(chunk, V)}, hidden_in.options());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    const at::Tensor w = weight.narrow(0, v0, c);
    at::Tensor dz = flat.narrow(0, 0, na * c).view({na, c});
    at::mm_out(dz, h, w.t());
    check_cuda(cuda::soft_ce_dz(code, dz.data_ptr(), probs.data_ptr(), rows.data_ptr<int64_t>(), g.data_ptr<float>(),
                                row_lse.data_ptr<float>(), row_psum.data_ptr<float>(), na, c, v0, probs.stride(0),
                                stream),
               "soft_ce_dz");
    gh.addmm_(dz, w);
    at::Tensor gw = grad_weight.narrow(0, v0, c);
    at::mm_out(gw, dz.t(), h);
  }
  grad_hidden.index_copy_(0, rows, gh);
  return {grad_hidden, grad_weight};
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CUDA, m) {
  m.impl("soft_ce_fwd", &llmsys::soft_ce_fwd_cuda);
  m.impl("soft_ce_bwd", &llmsys::soft_ce_bwd_cuda);
}
