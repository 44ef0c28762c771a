// Fused soft cross-entropy over a vocab, CPU (float32 / float64).
//
// The vocab is walked in chunks of `chunk` columns: each chunk's logits z = hidden @ weight[v0:v1].T go
// through BLAS (at::mm) into one reused [rows, chunk] buffer, and an OpenMP row loop folds them into per-row
// running stats (max, sum of exp, p-weighted logit sum, argmax). Peak extra memory is rows * chunk, never
// rows * V. Forward keeps only lse and psum per row; backward recomputes each chunk's logits.
// With bf16_gemm (float32 only: the autocast path on CPUs with AMX-bf16) the three GEMMs take bf16 copies
// of hidden and weight and write bf16 logits / gradients; every row reduction (max, log-sum-exp, the
// p-weighted sum, dz) still runs in fp32/double on the row converted back, and grad_hidden is summed over
// the vocab chunks in fp32. Same numerics as a bf16-autocast head on GPU.
//
//   loss[n] = psum[n] * lse[n] - sum_v p[n,v] z[n,v]          (= -sum_v p log_softmax(z) when psum = 1)
//   dz[n,v] = g[n] * (psum[n] * exp(z[n,v] - lse[n]) - p[n,v])
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <limits>
#include <vector>

#include "soft_ce_common.h"
#include "vec_exp.h"

namespace llmsys {
namespace {

constexpr int64_t kRowGrain = kSoftCeRowGrain;

void check_inputs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& probs,
                  const std::optional<at::Tensor>& row_mask, int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && probs.dim() == 2,
              "soft_ce: expected hidden [N,H], weight [V,H], target_probs [N,V]; got ", hidden.sizes(), ", ",
              weight.sizes(), ", ", probs.sizes());
  TORCH_CHECK(hidden.size(1) == weight.size(1), "soft_ce: hidden H=", hidden.size(1), " != weight H=",
              weight.size(1));
  TORCH_CHECK(probs.size(0) == hidden.size(0) && probs.size(1) == weight.size(0),
              "soft_ce: target_probs must be [N,V]=[", hidden.size(0), ",", weight.size(0), "], got ",
              probs.sizes());
  TORCH_CHECK(hidden.scalar_type() == weight.scalar_type() && hidden.scalar_type() == probs.scalar_type(),
              "soft_ce: hidden, weight and target_probs must share a dtype");
  TORCH_CHECK(hidden.scalar_type() == at::kFloat || hidden.scalar_type() == at::kDouble,
              "soft_ce CPU op supports float32/float64, got ", hidden.scalar_type());
  TORCH_CHECK(chunk > 0, "soft_ce: chunk must be positive, got ", chunk);
  check_row_mask(hidden, row_mask);
}

void check_bf16_gemm(const at::Tensor& hidden, bool bf16_gemm) {
  TORCH_CHECK(!bf16_gemm || hidden.scalar_type() == at::kFloat,
              "soft_ce: bf16_gemm needs float32 inputs, got ", hidden.scalar_type());
}

// Row r of a [rows, c] GEMM result as scalar_t: in place when the GEMM wrote scalar_t, else converted from
// bf16 into `buf` (one row, L1/L2-resident).
template <typename scalar_t>
inline scalar_t* gemm_row(const at::Tensor& z, int64_t r, int64_t c, std::vector<scalar_t>& buf) {
  if (z.scalar_type() != at::kBFloat16) return z.data_ptr<scalar_t>() + r * c;
  const at::BFloat16* src = z.data_ptr<at::BFloat16>() + r * c;
  for (int64_t j = 0; j < c; ++j) buf[j] = static_cast<scalar_t>(src[j]);
  return buf.data();
}

// oneDNN JIT-compiles and caches one bf16 kernel per GEMM shape; the active-row count changes every call, so
// the bf16 path rounds it up to a multiple of this (zero rows: zero logits, never read, zero dz) and reuses
// a few kernels instead of growing the cache each step.
constexpr int64_t kBf16RowBucket = 64;

// The GEMM operand: for the bf16 path a bf16 copy whose rows are zero-padded to `rows_to` (0 = as is).
inline at::Tensor gemm_operand(const at::Tensor& t, bool bf16_gemm, int64_t rows_to = 0) {
  if (!bf16_gemm) return t;
  if (rows_to <= t.size(0)) return t.to(at::kBFloat16);
  at::Tensor out = at::zeros({rows_to, t.size(1)}, t.options().dtype(at::kBFloat16));
  out.narrow(0, 0, t.size(0)).copy_(t);
  return out;
}

inline int64_t gemm_rows(int64_t na, bool bf16_gemm) {
  return bf16_gemm ? (na + kBf16RowBucket - 1) / kBf16RowBucket * kBf16RowBucket : na;
}

template <typename scalar_t>
void forward_impl(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& probs,
                  const at::Tensor& rows, int64_t chunk, bool bf16_gemm, at::Tensor& loss, at::Tensor& lse,
                  at::Tensor& psum, at::Tensor& argmax) {
  const int64_t na = rows.size(0), V = weight.size(0), Vp = probs.stride(0);
  if (na == 0) return;
  const int64_t ng = gemm_rows(na, bf16_gemm);  // GEMM rows (>= na); only the first na are read
  const at::Tensor h = gemm_operand(hidden.index_select(0, rows), bf16_gemm, ng);
  at::Tensor flat = at::empty({ng * std::min(chunk, V)}, h.options());
  // Running per-row state in double: it is O(rows) and keeps 32k-term sums exact enough.
  std::vector<double> run_max(na, -std::numeric_limits<double>::infinity()), run_sum(na, 0.0),
      run_dot(na, 0.0), run_psum(na, 0.0);
  std::vector<scalar_t> best(na, -std::numeric_limits<scalar_t>::infinity());
  std::vector<int64_t> best_idx(na, 0);
  const int64_t* row_ids = rows.data_ptr<int64_t>();
  const scalar_t* p_base = probs.data_ptr<scalar_t>();

  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    at::Tensor z = scratch_view(flat, ng, c);
    at::mm_out(z, h, gemm_operand(weight.narrow(0, v0, c), bf16_gemm).t());  // bf16: one chunk's copy at a time
    at::parallel_for(0, na, kRowGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> buf(bf16_gemm ? c : 0);
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* zr = gemm_row<scalar_t>(z, r, c, buf);
        const scalar_t* pr = p_base + row_ids[r] * Vp + v0;
        scalar_t cmax = zr[0];
        int64_t cidx = 0;
        scalar_t dot = 0, ps = 0;
        for (int64_t j = 0; j < c; ++j) {
          if (zr[j] > cmax) { cmax = zr[j]; cidx = j; }
          dot += pr[j] * zr[j];
          ps += pr[j];
        }
        if (cmax > best[r]) { best[r] = cmax; best_idx[r] = v0 + cidx; }
        const double new_max = std::max(run_max[r], static_cast<double>(cmax));
        const double chunk_sum = sum_exp_shifted(zr, c, static_cast<scalar_t>(new_max));
        run_sum[r] = run_sum[r] * std::exp(run_max[r] - new_max) + chunk_sum;
        run_max[r] = new_max;
        run_dot[r] += dot;
        run_psum[r] += ps;
      }
    });
  }
  scalar_t* loss_p = loss.data_ptr<scalar_t>();
  scalar_t* lse_p = lse.data_ptr<scalar_t>();
  scalar_t* psum_p = psum.data_ptr<scalar_t>();
  int64_t* arg_p = argmax.data_ptr<int64_t>();
  for (int64_t r = 0; r < na; ++r) {
    const int64_t n = row_ids[r];
    const double row_lse = run_max[r] + std::log(run_sum[r]);
    lse_p[n] = static_cast<scalar_t>(row_lse);
    psum_p[n] = static_cast<scalar_t>(run_psum[r]);
    loss_p[n] = static_cast<scalar_t>(run_psum[r] * row_lse - run_dot[r]);
    arg_p[n] = best_idx[r];
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> soft_ce_fwd_cpu(
    const at::Tensor& hidden_in, const at::Tensor& weight_in, const at::Tensor& probs_in,
    const std::optional<at::Tensor>& row_mask, int64_t chunk, bool bf16_gemm) {
  check_inputs(hidden_in, weight_in, probs_in, row_mask, chunk);
  check_bf16_gemm(hidden_in, bf16_gemm);
  const at::Tensor hidden = hidden_in.contiguous(), weight = weight_in.contiguous(),
                   probs = probs_in.contiguous();
  const int64_t N = hidden.size(0);
  at::Tensor loss = at::zeros({N}, hidden.options());
  at::Tensor lse = at::zeros({N}, hidden.options());
  at::Tensor psum = at::zeros({N}, hidden.options());
  at::Tensor argmax = at::full({N}, -1, hidden.options().dtype(at::kLong));
  const at::Tensor rows = active_rows(hidden, row_mask);
  AT_DISPATCH_FLOATING_TYPES(hidden.scalar_type(), "soft_ce_fwd_cpu", [&] {
    forward_impl<scalar_t>(hidden, weight, probs, rows, chunk, bf16_gemm, loss, lse, psum, argmax);
  });
  return {loss, lse, psum, argmax};
}

template <typename scalar_t>
void backward_impl(const at::Tensor& grad_loss, const at::Tensor& hidden, const at::Tensor& weight,
                   const at::Tensor& probs, const at::Tensor& rows, const at::Tensor& lse,
                   const at::Tensor& psum, int64_t chunk, bool bf16_gemm, at::Tensor& grad_hidden,
                   at::Tensor& grad_weight) {
  const int64_t na = rows.size(0), V = weight.size(0), Vp = probs.stride(0);
  if (na == 0) return;
  const at::Tensor h_rows = hidden.index_select(0, rows);
  const int64_t ng = gemm_rows(na, bf16_gemm);  // zero-padded GEMM rows: zero logits, left as zero dz below
  const at::Tensor h = gemm_operand(h_rows, bf16_gemm, ng);
  const at::Tensor g = grad_loss.index_select(0, rows).contiguous();
  const at::Tensor row_lse = lse.index_select(0, rows).contiguous();
  const at::Tensor row_psum = psum.index_select(0, rows).contiguous();
  at::Tensor gh = at::zeros_like(h_rows);  // summed over vocab chunks in the input dtype (fp32 on the bf16 path)
  at::Tensor flat = at::empty({ng * std::min(chunk, V)}, h.options());
  const int64_t* row_ids = rows.data_ptr<int64_t>();
  const scalar_t* p_base = probs.data_ptr<scalar_t>();
  const scalar_t* g_p = g.data_ptr<scalar_t>();
  const scalar_t* lse_p = row_lse.data_ptr<scalar_t>();
  const scalar_t* psum_p = row_psum.data_ptr<scalar_t>();

  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    const at::Tensor w = gemm_operand(weight.narrow(0, v0, c), bf16_gemm);  // bf16: this chunk only
    at::Tensor dz = scratch_view(flat, ng, c);
    at::mm_out(dz, h, w.t());  // padded rows: h is zero there, so dz stays zero and adds nothing to gw
    at::parallel_for(0, na, kRowGrain, [&](int64_t begin, int64_t end) {
      std::vector<scalar_t> buf(bf16_gemm ? c : 0);
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* zr = gemm_row<scalar_t>(dz, r, c, buf);
        const scalar_t* pr = p_base + row_ids[r] * Vp + v0;
        exp_shifted_inplace(zr, c, lse_p[r]);  // z -> softmax(z)
        const scalar_t gs = g_p[r] * psum_p[r], gr = g_p[r];
        for (int64_t j = 0; j < c; ++j) zr[j] = gs * zr[j] - gr * pr[j];
        if (bf16_gemm) {  // dz row back into the bf16 GEMM operand
          at::BFloat16* dst = dz.data_ptr<at::BFloat16>() + r * c;
          for (int64_t j = 0; j < c; ++j) dst[j] = static_cast<at::BFloat16>(zr[j]);
        }
      }
    });
    at::Tensor gw = grad_weight.narrow(0, v0, c);
    if (bf16_gemm) {
      gh.add_(at::mm(dz, w).narrow(0, 0, na));
      gw.copy_(at::mm(dz.t(), h));
    } else {
      gh.addmm_(dz, w);
      at::mm_out(gw, dz.t(), h);
    }
  }
  grad_hidden.index_copy_(0, rows, gh);
}

std::tuple<at::Tensor, at::Tensor> soft_ce_bwd_cpu(const at::Tensor& grad_loss, const at::Tensor& hidden_in,
                                                   const at::Tensor& weight_in, const at::Tensor& probs_in,
                                                   const std::optional<at::Tensor>& row_mask,
                                                   const at::Tensor& lse, const at::Tensor& psum,
                                                   int64_t chunk, bool bf16_gemm) {
  check_inputs(hidden_in, weight_in, probs_in, row_mask, chunk);
  check_bf16_gemm(hidden_in, bf16_gemm);
  TORCH_CHECK(grad_loss.dim() == 1 && grad_loss.size(0) == hidden_in.size(0), "soft_ce_bwd: grad_loss must be [N]");
  const at::Tensor hidden = hidden_in.contiguous(), weight = weight_in.contiguous(),
                   probs = probs_in.contiguous();
  at::Tensor grad_hidden = at::zeros_like(hidden);
  at::Tensor grad_weight = at::zeros_like(weight);
  const at::Tensor rows = active_rows(hidden, row_mask);
  AT_DISPATCH_FLOATING_TYPES(hidden.scalar_type(), "soft_ce_bwd_cpu", [&] {
    backward_impl<scalar_t>(grad_loss.to(hidden.scalar_type()), hidden, weight, probs, rows,
                            lse.to(hidden.scalar_type()), psum.to(hidden.scalar_type()), chunk, bf16_gemm, grad_hidden,
                            grad_weight);
  });
  return {grad_hidden, grad_weight};
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) {
  m.impl("soft_ce_fwd", &llmsys::soft_ce_fwd_cpu);
  m.impl("soft_ce_bwd", &llmsys::soft_ce_bwd_cpu);
}
