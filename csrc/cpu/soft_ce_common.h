// Helpers shared by the CPU soft cross-entropy kernels (soft_ce.cpp, soft_ce_from_target.cpp).
#pragma once

#include <ATen/ATen.h>

#include <optional>

namespace llmsys {

constexpr int64_t kSoftCeRowGrain = 8;  // rows per parallel task: each row already does `chunk` exps

inline void check_row_mask(const at::Tensor& hidden, const std::optional<at::Tensor>& row_mask) {
  if (row_mask.has_value()) {
    TORCH_CHECK(row_mask->dim() == 1 && row_mask->size(0) == hidden.size(0),
                "soft_ce: row_mask must be [N]=[", hidden.size(0), "], got ", row_mask->sizes());
  }
}

// Indices of rows that take part (all rows when no mask).
inline at::Tensor active_rows(const at::Tensor& hidden, const std::optional<at::Tensor>& row_mask) {
  if (!row_mask.has_value()) return at::arange(hidden.size(0), hidden.options().dtype(at::kLong));
  return row_mask->ne(0).nonzero().view(-1).contiguous();
}

// [rows, cols] contiguous view into a flat scratch buffer (so mm writes it without a copy).
inline at::Tensor scratch_view(at::Tensor& flat, int64_t rows, int64_t cols) {
  return flat.narrow(0, 0, rows * cols).view({rows, cols});
}

}  // namespace llmsys
