// Fused soft cross-entropy against the target head's own logits, CPU (float32 / float64).
//
// q = softmax(t), t = target_hidden @ target_weight.T (the target head's rows on the draft vocab, frozen);
// z = hidden @ weight.T (the draft head). Per vocab chunk both logits tiles go through BLAS into two reused
// [rows, chunk] buffers and one row pass folds them into online stats: z max/sum, t max/sum and
// sum_v exp(t - t_max) * z. Neither model's [N, V] logits (nor q) ever exists.
//   loss[n] = lse_z[n] - sum_v q[n,v] z[n,v];   dz[n,v] = g[n] * (exp(z - lse_z) - exp(t - lse_t))
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

void check_inputs(const at::Tensor& hidden, const at::Tensor& weight, const at::Tensor& t_hidden,
                  const at::Tensor& t_weight, const std::optional<at::Tensor>& row_mask, int64_t chunk) {
  TORCH_CHECK(hidden.dim() == 2 && weight.dim() == 2 && t_hidden.dim() == 2 && t_weight.dim() == 2,
              "soft_ce_from_target: expected hidden [N,H], weight [V,H], target_hidden [N,Ht], target_weight [V,Ht]");
  TORCH_CHECK(hidden.size(1) == weight.size(1) && t_hidden.size(1) == t_weight.size(1),
              "soft_ce_from_target: hidden sizes of the draft or target pair differ");
  TORCH_CHECK(t_hidden.size(0) == hidden.size(0) && t_weight.size(0) == weight.size(0),
              "soft_ce_from_target: target_hidden must have N=", hidden.size(0), " rows and target_weight V=",
              weight.size(0), " rows; got ", t_hidden.sizes(), " and ", t_weight.sizes());
  const auto dt = hidden.scalar_type();
  TORCH_CHECK(weight.scalar_type() == dt && t_hidden.scalar_type() == dt && t_weight.scalar_type() == dt,
              "soft_ce_from_target: all four tensors must share a dtype");
  TORCH_CHECK(dt == at::kFloat || dt == at::kDouble, "soft_ce_from_target CPU op supports float32/float64");
  TORCH_CHECK(chunk > 0, "soft_ce_from_target: chunk must be positive, got ", chunk);
  check_row_mask(hidden, row_mask);
}

template <typename scalar_t>
inline scalar_t row_max(const scalar_t* x, int64_t n, int64_t* arg) {
  scalar_t best = x[0];
  *arg = 0;
  for (int64_t j = 1; j < n; ++j)
    if (x[j] > best) { best = x[j]; *arg = j; }
  return best;
}

template <typename scalar_t>
void forward_impl(const at::Tensor& h, const at::Tensor& weight, const at::Tensor& th, const at::Tensor& tw,
                  const at::Tensor& rows, int64_t chunk, at::Tensor& loss, at::Tensor& lse, at::Tensor& t_lse,
                  at::Tensor& argmax) {
  const int64_t na = h.size(0), V = weight.size(0);
  const double inf = std::numeric_limits<double>::infinity();
  std::vector<double> z_max(na, -inf), z_sum(na, 0.0), t_max(na, -inf), t_sum(na, 0.0), tz_sum(na, 0.0);
  std::vector<int64_t> best_idx(na, 0);
  at::Tensor zflat = at::empty({na * std::min(chunk, V)}, h.options());
  at::Tensor tflat = at::empty({na * std::min(chunk, V)}, h.options());
  for (int64_t v0 = 0; v0 < V; v0 += chunk) {
    const int64_t c = std::min(chunk, V - v0);
    at::Tensor z = scratch_view(zflat, na, c), t = scratch_view(tflat, na, c);
    at::mm_out(z, h, weight.narrow(0, v0, c).t());
    at::mm_out(t, th, tw.narrow(0, v0, c).t());
    scalar_t* zp = z.data_ptr<scalar_t>();
    scalar_t* tp = t.data_ptr<scalar_t>();
    at::parallel_for(0, na, kSoftCeRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        const scalar_t* zr = zp + r * c;
        scalar_t* tr = tp + r * c;
        int64_t zarg = 0, unused = 0;
        const double zc = row_max(zr, c, &zarg), tc = row_max(tr, c, &unused);
        if (zc > z_max[r]) best_idx[r] = v0 + zarg;  // strict: the first maximum wins, as torch.argmax
        const double new_z = std::max(z_max[r], zc), new_t = std::max(t_max[r], tc);
        z_sum[r] = z_sum[r] * std::exp(z_max[r] - new_z) + sum_exp_shifted(zr, c, static_cast<scalar_t>(new_z));
        exp_shifted_inplace(tr, c, static_cast<scalar_t>(new_t));  // t -> exp(t - new_t), reused below
        double e_sum = 0.0, ez_sum = 0.0;
        for (int64_t j = 0; j < c; ++j) {
          e_sum += tr[j];
          ez_sum += static_cast<double>(tr[j]) * zr[j];
        }
        const double scale = std::exp(t_max[r] - new_t);
        t_sum[r] = t_sum[r] * scale + e_sum;
        tz_sum[r] = tz_sum[r] * scale + ez_sum;
        z_max[r] = new_z;
        t_max[r] = new_t;
      }
    });
  }
  const int64_t* row_ids = rows.data_ptr<int64_t>();
  for (int64_t r = 0; r < na; ++r) {
    const int64_t n = row_ids[r];
    const double zl = z_max[r] + std::log(z_sum[r]);
    lse.data_ptr<scalar_t>()[n] = static_cast<scalar_t>(zl);
    t_lse.data_ptr<scalar_t>()[n] = static_cast<scalar_t>(t_max[r] + std::log(t_sum[r]));
    loss.data_ptr<scalar_t>()[n] = static_cast<scalar_t>(zl - tz_sum[r] / t_sum[r]);
    argmax.data_ptr<int64_t>()[n] = best_idx[r];
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> fwd_cpu(
    const at::Tensor& hidden, const at::Tensor& weight_in, const at::Tensor& t_hidden, const at::Tensor& t_weight_in,
    const std::optional<at::Tensor>& row_mask, int64_t chunk) {
  check_inputs(hidden, weight_in, t_hidden, t_weight_in, row_mask, chunk);
  const int64_t N = hidden.size(0);
  at::Tensor loss = at::zeros({N}, hidden.options()), lse = at::zeros({N}, hidden.options());
  at::Tensor t_lse = at::zeros({N}, hidden.options());
  at::Tensor argmax = at::full({N}, -1, hidden.options().dtype(at::kLong));
  const at::Tensor rows = active_rows(hidden, row_mask);
  if (rows.size(0) == 0) return {loss, lse, t_lse, argmax};
  const at::Tensor h = hidden.index_select(0, rows), th = t_hidden.index_select(0, rows);
  AT_DISPATCH_FLOATING_TYPES(hidden.scalar_type(), "soft_ce_from_target_fwd_cpu", [&] {
    forward_impl<scalar_t>(h, weight_in.contiguous(), th, t_weight_in.contiguous(), rows, chunk, loss, lse, t_lse,
                           argmax);
  });
  return {loss, lse, t_lse, argmax};
}

std::tuple<at::Tensor, at::Tensor> bwd_cpu(const at::Tensor& grad_loss, const at::Tensor& hidden,
                                           const at::Tensor& weight_in, const at::Tensor& t_hidden,
                                           const at::Tensor& t_weight_in, const std::optional<at::Tensor>& row_mask,
                                           const at::Tensor& lse, const at::Tensor& t_lse, int64_t chunk) {
  check_inputs(hidden, weight_in, t_hidden, t_weight_in, row_mask, chunk);
  const at::Tensor weight = weight_in.contiguous(), tw = t_weight_in.contiguous();
  at::Tensor grad_hidden = at::zeros_like(hidden), grad_weight = at::zeros_like(weight);
  const at::Tensor rows = active_rows(hidden, row_mask);
  const int64_t na = rows.size(0), V = weight.size(0);
  if (na == 0) return {grad_hidden, grad_weight};
  const auto dt = hidden.scalar_type();
  const at::Tensor h = hidden.index_select(0, rows), th = t_hidden.index_select(0, rows);
  const at::Tensor g = grad_loss.index_select(0, rows).to(dt).contiguous();
  const at::Tensor zl = lse.index_select(0, rows).to(dt).contiguous(), tl = t_lse.index_select(0, rows).to(dt).contiguous();
  at::Tensor gh = at::zeros_like(h);
  at::Tensor zflat = at::empty({na * std::min(chunk, V)}, h.options()), tflat = at::empty_like(zflat);
  AT_DISPATCH_FLOATING_TYPES(dt, "soft_ce_from_target_bwd_cpu", [&] {
    const scalar_t *gp = g.data_ptr<scalar_t>(), *zlp = zl.data_ptr<scalar_t>(), *tlp = tl.data_ptr<scalar_t>();
    for (int64_t v0 = 0; v0 < V; v0 += chunk) {
      const int64_t c = std::min(chunk, V - v0);
      const at::Tensor w = weight.narrow(0, v0, c);
      at::Tensor dz = scratch_view(zflat, na, c), t = scratch_view(tflat, na, c);
      at::mm_out(dz, h, w.t());
      at::mm_out(t, th, tw.narrow(0, v0, c).t());
      scalar_t *zp = dz.data_ptr<scalar_t>(), *tp = t.data_ptr<scalar_t>();
      at::parallel_for(0, na, kSoftCeRowGrain, [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          scalar_t *zr = zp + r * c, *tr = tp + r * c;
          exp_shifted_inplace(zr, c, zlp[r]);  // softmax of the draft
          exp_shifted_inplace(tr, c, tlp[r]);  // q, the target distribution
          for (int64_t j = 0; j < c; ++j) zr[j] = gp[r] * (zr[j] - tr[j]);
        }
      });
      gh.addmm_(dz, w);
      at::Tensor gw = grad_weight.narrow(0, v0, c);
      at::mm_out(gw, dz.t(), h);
    }
  });
  grad_hidden.index_copy_(0, rows, gh);
  return {grad_hidden, grad_weight};
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) {
  m.impl("soft_ce_from_target_fwd", &llmsys::fwd_cpu);
  m.impl("soft_ce_from_target_bwd", &llmsys::bwd_cpu);
}
