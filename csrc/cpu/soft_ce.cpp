// Fused soft cross-entropy over a vocab, CPU (float32 / float64).
//
// The vocab is walked in chunks of `chunk` columns: each chunk's logits z = hidden @ weight[v0:v1].T go
// through BLAS (at::mm) into one reused [rows, chunk] buffer, and an OpenMP row loop folds them into per-row
// running stats (max, sum of exp, p-weighted logit sum, argmax). Peak extra memory is rows * chunk, never
// rows * V. Forward keeps only lse and psum per row; backward recomputes each chunk's logits.
//
//   loss[n] = psum[n] * lse[n] - sum_v p[n,v] z[n,v]          (= -sum_v p log_softmax(z) when psum = 1)
//   dz[n,v] = g[n] * (psum[n] * exp(z[n,v] - lse[n]) - p[n,v])
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <limits>

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

template <typename scalar_t>
void forward_impl(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& probs,
                  const at::Tensor& rows, int64_t chunk, at::Tensor& loss, at::Tensor& lse, at::Tensor& psum,
                  at::Tensor& argmax) {
  const int64_t na = rows.size(0), V = weight.size(0), Vp = probs.stride(0);
  if (na == 0) return;
  const at::Tensor h = hidden.index_select(0, rows);
  at::Tensor flat = at::empty({na * std::min(chunk, V)}, hidden.options());
  // Running per-row state in double: it is O(rows) and keeps 32k-term sums exact enough.
  std::vector<double> run_max(na, -std::numeric_limits<double>::infinity()), run_sum(na, 0.0),
      run_dot(na, 0.0), run_psum(na, 0.0);
  std::vector<scalar_t> best(na, -std::numeric_limits<scalar_t>::infinity());
  std::vector<int64_t> best_idx(na, 0);
  const int64_t* row_ids = rows.data_ptr<int64_t>();
  const scalar_t* p_base = probs.data_ptr<scalar_t>();

  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    at::Tensor z = scratch_view(flat, na, c);
    at::mm_out(z, h, weight.narrow(0, v0, c).t());
    const scalar_t* zp = z.data_ptr<scalar_t>();
    at::parallel_for(0, na, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* zr = zp + r * c;
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
    const std::optional<at::Tensor>& row_mask, int64_t chunk) {
  check_inputs(hidden_in, weight_in, probs_in, row_mask, chunk);
  const at::Tensor hidden = hidden_in.contiguous(), weight = weight_in.contiguous(),
                   probs = probs_in.contiguous();
  const int64_t N = hidden.size(0);
  at::Tensor loss = at::zeros({N}, hidden.options());
  at::Tensor lse = at::zeros({N}, hidden.options());
  at::Tensor psum = at::zeros({N}, hidden.options());
  at::Tensor argmax = at::full({N}, -1, hidden.options().dtype(at::kLong));
  const at::Tensor rows = active_rows(hidden, row_mask);
  AT_DISPATCH_FLOATING_TYPES(hidden.scalar_type(), "soft_ce_fwd_cpu", [&] {
    forward_impl<scalar_t>(hidden, weight, probs, rows, chunk, loss, lse, psum, argmax);
  });
  return {loss, lse, psum, argmax};
}

template <typename scalar_t>
void backward_impl(const at::Tensor& grad_loss, const at::Tensor& hidden, const at::Tensor& weight,
                   const at::Tensor& probs, const at::Tensor& rows, const at::Tensor& lse,
                   const at::Tensor& psum, int64_t chunk, at::Tensor& grad_hidden, at::Tensor& grad_weight) {
  const int64_t na = rows.size(0), V = weight.size(0), Vp = probs.stride(0);
  if (na == 0) return;
  const at::Tensor h = hidden.index_select(0, rows);
  const at::Tensor g = grad_loss.index_select(0, rows).contiguous();
  const at::Tensor row_lse = lse.index_select(0, rows).contiguous();
  const at::Tensor row_psum = psum.index_select(0, rows).contiguous();
  at::Tensor gh = at::zeros_like(h);
  at::Tensor flat = at::empty({na * std::min(chunk, V)}, hidden.options());
  const int64_t* row_ids = rows.data_ptr<int64_t>();
  const scalar_t* p_base = probs.data_ptr<scalar_t>();
  const scalar_t* g_p = g.data_ptr<scalar_t>();
  const scalar_t* lse_p = row_lse.data_ptr<scalar_t>();
  const scalar_t* psum_p = row_psum.data_ptr<scalar_t>();

  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    const at::Tensor w = weight.narrow(0, v0, c);
    at::Tensor dz = scratch_view(flat, na, c);
    at::mm_out(dz, h, w.t());
    scalar_t* dzp = dz.data_ptr<scalar_t>();
    at::parallel_for(0, na, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        scalar_t* zr = dzp + r * c;
        const scalar_t* pr = p_base + row_ids[r] * Vp + v0;
        exp_shifted_inplace(zr, c, lse_p[r]);  // z -> softmax(z)
        const scalar_t gs = g_p[r] * psum_p[r], gr = g_p[r];
        for (int64_t j = 0; j < c; ++j) zr[j] = gs * zr[j] - gr * pr[j];
      }
    });
    gh.addmm_(dz, w);
    at::Tensor gw = grad_weight.narrow(0, v0, c);
    at::mm_out(gw, dz.t(), h);
  }
  grad_hidden.index_copy_(0, rows, gh);
}

std::tuple<at::Tensor, at::Tensor> soft_ce_bwd_cpu(const at::Tensor& grad_loss, const at::Tensor& hidden_in,
                                                   const at::Tensor& weight_in, const at::Tensor& probs_in,
                                                   const std::optional<at::Tensor>& row_mask,
                                                   const at::Tensor& lse, const at::Tensor& psum,
                                                   int64_t chunk) {
  check_inputs(hidden_in, weight_in, probs_in, row_mask, chunk);
  TORCH_CHECK(grad_loss.dim() == 1 && grad_loss.size(0) == hidden_in.size(0), "soft_ce_bwd: grad_loss must be [N]");
  const at::Tensor hidden = hidden_in.contiguous(), weight = weight_in.contiguous(),
                   probs = probs_in.contiguous();
  at::Tensor grad_hidden = at::zeros_like(hidden);
  at::Tensor grad_weight = at::zeros_like(weight);
  const at::Tensor rows = active_rows(hidden, row_mask);
  AT_DISPATCH_FLOATING_TYPES(hidden.scalar_type(), "soft_ce_bwd_cpu", [&] {
    backward_impl<scalar_t>(grad_loss.to(hidden.scalar_type()), hidden, weight, probs, rows,
                            lse.to(hidden.scalar_type()), psum.to(hidden.scalar_type()), chunk, grad_hidden,
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
