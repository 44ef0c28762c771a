// Fused residual add + RMSNorm, CPU (float32 / float64): the pre-norm step the EAGLE-3 draft runs 4 times per
// TTT step. Eager torch runs it as ~7 elementwise kernels (add, upcast, pow, mean, rsqrt, mul, mul), each a
// full pass over [rows, H]; here each row is read once and written twice (y and the residual stream).
//   summed = x + residual;  rstd = 1 / sqrt(mean(summed^2) + eps);  y = summed * rstd * weight
// Backward (g_s = incoming grad of `summed` from the next residual add):
//   xhat = summed * rstd;  dW = sum_rows(g_y * xhat)
//   d_summed = rstd * (g_y*w - xhat * mean(g_y*w*xhat)) + g_s   (= grad of x = grad of residual)
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <cmath>
#include <vector>

namespace llmsys {
namespace {

constexpr int64_t kRowGrain = 16;

void check(const at::Tensor& a, const at::Tensor& b, const at::Tensor& weight) {
  TORCH_CHECK(a.sizes() == b.sizes(), "rmsnorm_residual: x and residual shapes differ: ", a.sizes(), " vs ",
              b.sizes());
  TORCH_CHECK(a.dim() >= 1 && weight.dim() == 1 && weight.size(0) == a.size(-1),
              "rmsnorm_residual: weight must be [H] with H = x.size(-1)");
  TORCH_CHECK(a.scalar_type() == b.scalar_type() && a.scalar_type() == weight.scalar_type(),
              "rmsnorm_residual: x, residual and weight must share a dtype");
  TORCH_CHECK(a.scalar_type() == at::kFloat || a.scalar_type() == at::kDouble,
              "rmsnorm_residual CPU op supports float32/float64, got ", a.scalar_type());
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> fwd_cpu(const at::Tensor& x_in, const at::Tensor& r_in,
                                                       const at::Tensor& w_in, double eps) {
  check(x_in, r_in, w_in);
  const at::Tensor x = x_in.contiguous(), r = r_in.contiguous(), w = w_in.contiguous();
  const int64_t H = x.size(-1), rows = x.numel() / std::max<int64_t>(H, 1);
  at::Tensor y = at::empty_like(x), summed = at::empty_like(x);
  auto stat_sizes = x.sizes().vec();
  stat_sizes.back() = 1;
  at::Tensor rstd = at::empty(stat_sizes, x.options());
  AT_DISPATCH_FLOATING_TYPES(x.scalar_type(), "rmsnorm_residual_fwd_cpu", [&] {
    const scalar_t *xp = x.data_ptr<scalar_t>(), *rp = r.data_ptr<scalar_t>(), *wp = w.data_ptr<scalar_t>();
    scalar_t *yp = y.data_ptr<scalar_t>(), *sp = summed.data_ptr<scalar_t>(), *qp = rstd.data_ptr<scalar_t>();
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) {
        const int64_t o = i * H;
        double sq = 0.0;
        for (int64_t j = 0; j < H; ++j) {
          const scalar_t s = xp[o + j] + rp[o + j];
          sp[o + j] = s;
          sq += static_cast<double>(s) * s;
        }
        const scalar_t inv = static_cast<scalar_t>(1.0 / std::sqrt(sq / H + eps));
        qp[i] = inv;
        for (int64_t j = 0; j < H; ++j) yp[o + j] = sp[o + j] * inv * wp[j];
      }
    });
  });
  return {y, summed, rstd};
}

std::tuple<at::Tensor, at::Tensor> bwd_cpu(const at::Tensor& gy_in, const at::Tensor& gs_in,
                                           const at::Tensor& s_in, const at::Tensor& w_in,
                                           const at::Tensor& rstd_in) {
  check(s_in, gy_in, w_in);
  const at::Tensor gy = gy_in.contiguous(), gs = gs_in.contiguous(), s = s_in.contiguous(), w = w_in.contiguous(),
                   rstd = rstd_in.contiguous();
  const int64_t H = s.size(-1), rows = s.numel() / std::max<int64_t>(H, 1);
  TORCH_CHECK(gs.numel() == s.numel() && rstd.numel() == rows, "rmsnorm_residual_bwd: bad grad/stat shapes");
  at::Tensor gx = at::empty_like(s);
  at::Tensor gw = at::zeros_like(w);
  AT_DISPATCH_FLOATING_TYPES(s.scalar_type(), "rmsnorm_residual_bwd_cpu", [&] {
    const scalar_t *gyp = gy.data_ptr<scalar_t>(), *gsp = gs.data_ptr<scalar_t>(), *sp = s.data_ptr<scalar_t>(),
                   *wp = w.data_ptr<scalar_t>(), *qp = rstd.data_ptr<scalar_t>();
    scalar_t* gxp = gx.data_ptr<scalar_t>();
    // dW is a reduction over rows: each thread sums into its own slot, slots are added at the end.
    const int64_t slots = at::get_num_threads();
    std::vector<double> partial(slots * H, 0.0);
    at::parallel_for(0, rows, kRowGrain, [&](int64_t begin, int64_t end) {
      double* mine = partial.data() + at::get_thread_num() * H;
      for (int64_t i = begin; i < end; ++i) {
        const int64_t o = i * H;
        const double inv = qp[i];
        double dot = 0.0;
        for (int64_t j = 0; j < H; ++j) {
          const double xhat = sp[o + j] * inv;
          dot += static_cast<double>(gyp[o + j]) * wp[j] * xhat;
          mine[j] += static_cast<double>(gyp[o + j]) * xhat;
        }
        const double mean_dot = dot / H;
        for (int64_t j = 0; j < H; ++j) {
          const double xhat = sp[o + j] * inv;
          gxp[o + j] = static_cast<scalar_t>(inv * (static_cast<double>(gyp[o + j]) * wp[j] - xhat * mean_dot) +
                                             gsp[o + j]);
        }
      }
    });
    scalar_t* gwp = gw.data_ptr<scalar_t>();
    for (int64_t t = 0; t < slots; ++t)
      for (int64_t j = 0; j < H; ++j) gwp[j] += static_cast<scalar_t>(partial[t * H + j]);
  });
  return {gx, gw};
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) {
  m.impl("rmsnorm_residual_fwd", &llmsys::fwd_cpu);
  m.impl("rmsnorm_residual_bwd", &llmsys::bwd_cpu);
}
