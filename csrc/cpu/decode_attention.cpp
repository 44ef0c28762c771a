// Attention of a few new tokens against a preallocated KV cache, fp32, batch 1 (decoding, draft-tree
// verification, tree drafting): RoPE on the new q and k, the new k and v written into the cache in place,
// then every query attends to the cached prefix plus the recent slots its tree mask allows.
//
// Why: at batch 1 the math is tiny (a 1-token step at 256 cached tokens is ~0.3 MFLOP per layer), and in
// torch it is ~15 ops (rope, cache writes, views, SDPA) whose dispatch costs more than the work: SDPA alone
// took ~75 us per layer on the 2-core box. Here it is one call per layer. The queries that share a kv head
// (GQA group x a block of tokens) walk its keys and values together in L1-sized tiles, so the cache is read
// from L2 once per block instead of once per query (a per-query loop was bound by L2 traffic).
//
//   qkv    [T, (H + 2 KV) * D]  the q, k, v projections of the new tokens (HF row order, rotate_half RoPE)
//   cos/sin [P, D/2]            RoPE tables by position (the first half of HF's cos/sin; both halves are equal)
//   positions [T] int64         rope position of each new token (tree nodes: past + depth)
//   cache  [2, KV, C, D]        this layer's keys and values; slots < past are the prefix, the new tokens go
//                               to slots past .. past + T - 1 (in feed order)
//   tree_mask [T, M] bool       over the last M slots (S - M .. S - 1, S = past + T; slots before them are
//                               seen by every query): new token i sees slot S - M + j iff tree_mask[i, j].
//                               Target verification: M = T (the tree); a drafter: M = its tree nodes so far.
//                               Absent = causal over the new tokens.
// Returns [T, H * D] (heads concatenated, o_proj's input). Query head h reads kv head h / (H / KV) (GQA).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <immintrin.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "vec_exp.h"
#include "vec_sum.h"

namespace llmsys {
namespace {

inline float dot(const float* a, const float* b, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), acc);
  float tot = hsum(acc);
  for (; i < n; ++i) tot += a[i] * b[i];
  return tot;
}

constexpr int64_t kTile = 32;        // keys per tile: 32 x D=64 floats of K and of V = 16 KB, in L1
constexpr int64_t kTokensPerItem = 4;  // tokens per work item (x the GQA group = queries sharing the tiles)

// out[i] = <q, keys[i]> for n contiguous keys (row stride D): 8 keys at a time, one reduction for the 8.
void scores(const float* q, const float* keys, int64_t n, int64_t D, float* out) {
  int64_t i = 0;
  if (D % 8 == 0) {
    for (; i + 8 <= n; i += 8) {
      __m256 acc[8];
      for (int r = 0; r < 8; ++r) acc[r] = _mm256_setzero_ps();
      for (int64_t d = 0; d < D; d += 8) {
        const __m256 qv = _mm256_loadu_ps(q + d);
        for (int r = 0; r < 8; ++r) acc[r] = _mm256_fmadd_ps(_mm256_loadu_ps(keys + (i + r) * D + d), qv, acc[r]);
      }
      _mm256_storeu_ps(out + i, hsum8(acc));
    }
  }
  for (; i < n; ++i) out[i] = dot(q, keys + i * D, D);
}

// o[:D] += sum_i p[i] values[i] over n contiguous value rows, 64 outputs at a time held in registers.
void accumulate(const float* p, const float* values, int64_t n, int64_t D, float* o) {
  int64_t d0 = 0;
  for (; d0 + 64 <= D; d0 += 64) {
    __m256 acc[8];
    for (int c = 0; c < 8; ++c) acc[c] = _mm256_loadu_ps(o + d0 + 8 * c);
    for (int64_t i = 0; i < n; ++i) {
      const __m256 w = _mm256_set1_ps(p[i]);
      for (int c = 0; c < 8; ++c) acc[c] = _mm256_fmadd_ps(w, _mm256_loadu_ps(values + i * D + d0 + 8 * c), acc[c]);
    }
    for (int c = 0; c < 8; ++c) _mm256_storeu_ps(o + d0 + 8 * c, acc[c]);
  }
  for (int64_t i = 0; i < n && d0 < D; ++i)  // head dims that are not a multiple of 64: the rest
    for (int64_t d = d0; d < D; ++d) o[d] += p[i] * values[i * D + d];
}

// out = scale * rope(x): out[i] = x[i] c[i] - x[i + h] s[i], out[i + h] = x[i + h] c[i] + x[i] s[i]
inline void rope(const float* x, const float* c, const float* s, int64_t half, float scale, float* out) {
  for (int64_t i = 0; i < half; ++i) {
    const float a = x[i], b = x[i + half];
    out[i] = (a * c[i] - b * s[i]) * scale;
    out[i + half] = (b * c[i] + a * s[i]) * scale;
  }
}

at::Tensor decode_attention_cpu(const at::Tensor& qkv_in, const at::Tensor& cos_in, const at::Tensor& sin_in,
                                const at::Tensor& positions_in, at::Tensor& cache, int64_t past,
                                const c10::optional<at::Tensor>& tree_mask, int64_t heads, double scale) {
  TORCH_CHECK(cache.dim() == 4 && cache.size(0) == 2 && cache.is_contiguous() && cache.scalar_type() == at::kFloat,
              "decode_attention: cache must be a contiguous float32 [2, KV, C, D]");
  const int64_t kv_heads = cache.size(1), C = cache.size(2), D = cache.size(3), half = D / 2;
  TORCH_CHECK(D % 2 == 0 && heads % kv_heads == 0, "decode_attention: even head_dim and heads % kv_heads == 0");
  TORCH_CHECK(qkv_in.dim() == 2 && qkv_in.scalar_type() == at::kFloat && qkv_in.size(1) == (heads + 2 * kv_heads) * D,
              "decode_attention: qkv must be float32 [T, (H + 2 KV) * D]");
  const int64_t T = qkv_in.size(0), S = past + T;
  TORCH_CHECK(past >= 0 && S <= C, "decode_attention: past + T = ", S, " exceeds the cache capacity ", C);
  TORCH_CHECK(positions_in.numel() == T && positions_in.scalar_type() == at::kLong,
              "decode_attention: positions [T] int64");
  TORCH_CHECK(cos_in.dim() == 2 && cos_in.size(1) == half && sin_in.sizes() == cos_in.sizes() &&
                  cos_in.scalar_type() == at::kFloat && sin_in.scalar_type() == at::kFloat,
              "decode_attention: cos/sin must be float32 [P, D/2]");
  const at::Tensor qkv = qkv_in.contiguous(), cs = cos_in.contiguous(), sn = sin_in.contiguous();
  const at::Tensor pos = positions_in.contiguous();
  at::Tensor mask;
  if (tree_mask.has_value()) {
    mask = tree_mask->to(at::kBool).contiguous();
    TORCH_CHECK(mask.dim() == 2 && mask.size(0) == T && mask.size(1) <= S,
                "decode_attention: tree_mask [T, M <= past + T]");
  }
  const int64_t M = mask.defined() ? mask.size(1) : T, open = S - M;  // slots < open: seen by all
  const int64_t P = cs.size(0), width = qkv.size(1), group = heads / kv_heads;
  const float* x = qkv.data_ptr<float>();
  const int64_t* pp = pos.data_ptr<int64_t>();
  float* kc = cache.data_ptr<float>();
  float* vc = kc + kv_heads * C * D;
  // rope'd, pre-scaled queries; new keys (rope'd) and values straight into their cache slots
  std::vector<float> q(T * heads * D);
  for (int64_t t = 0; t < T; ++t) {
    TORCH_CHECK(pp[t] >= 0 && pp[t] < P, "decode_attention: position ", pp[t], " outside the rope table (", P, ")");
    const float *c = cs.data_ptr<float>() + pp[t] * half, *s = sn.data_ptr<float>() + pp[t] * half;
    const float* row = x + t * width;
    for (int64_t h = 0; h < heads; ++h)
      rope(row + h * D, c, s, half, static_cast<float>(scale), &q[(t * heads + h) * D]);
    for (int64_t j = 0; j < kv_heads; ++j) {
      const int64_t slot = (j * C + past + t) * D;
      rope(row + (heads + j) * D, c, s, half, 1.0f, kc + slot);
      std::copy(row + (heads + kv_heads + j) * D, row + (heads + kv_heads + j + 1) * D, vc + slot);
    }
  }
  // new token t sees tail slot open + u iff visible(t, u); slots < open are seen by everyone
  const bool* mp = mask.defined() ? mask.data_ptr<bool>() : nullptr;
  auto visible = [&](int64_t t, int64_t u) { return mp ? mp[t * M + u] : u <= t; };
  at::Tensor out = at::zeros({T, heads * D}, qkv.options());
  float* op = out.data_ptr<float>();
  const int64_t blocks = (T + kTokensPerItem - 1) / kTokensPerItem;
  // one work item: kv head j x a block of tokens; its queries are (token t, head g of j's group)
  at::parallel_for(0, kv_heads * blocks, 1, [&](int64_t begin, int64_t end) {
    std::vector<float> score;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t j = item / blocks, t0 = (item % blocks) * kTokensPerItem;
      const int64_t nt = std::min(kTokensPerItem, T - t0), nq = nt * group;
      const float *keys = kc + j * C * D, *values = vc + j * C * D;
      score.assign(nq * S, 0.0f);
      auto query = [&](int64_t i) { return &q[((t0 + i / group) * heads + j * group + i % group) * D]; };
      auto output = [&](int64_t i) { return op + ((t0 + i / group) * heads + j * group + i % group) * D; };
      for (int64_t s0 = 0; s0 < S; s0 += kTile)
        for (int64_t i = 0; i < nq; ++i)
          scores(query(i), keys + s0 * D, std::min(kTile, S - s0), D, &score[i * S + s0]);
      for (int64_t i = 0; i < nq; ++i) {  // softmax over the visible slots; hidden ones get weight exactly 0
        float* row = &score[i * S];
        const int64_t t = t0 + i / group;
        float mx = -INFINITY;
        for (int64_t s = 0; s < open; ++s) mx = std::max(mx, row[s]);
        for (int64_t u = 0; u < M; ++u) mx = visible(t, u) ? std::max(mx, row[open + u]) : mx;
        exp_shifted_inplace<float>(row, S, mx);
        float total = 0.0f;
        for (int64_t u = 0; u < M; ++u) row[open + u] = visible(t, u) ? row[open + u] : 0.0f;
        for (int64_t s = 0; s < S; ++s) total += row[s];
        const float inv = 1.0f / total;
        for (int64_t s = 0; s < S; ++s) row[s] *= inv;
      }
      for (int64_t s0 = 0; s0 < S; s0 += kTile)
        for (int64_t i = 0; i < nq; ++i)
          accumulate(&score[i * S + s0], values + s0 * D, std::min(kTile, S - s0), D, output(i));
    }
  });
  return out;
}

}  // namespace
}  // namespace llmsys

TORCH_LIBRARY_IMPL(llmsys, CPU, m) { m.impl("decode_attention", &llmsys::decode_attention_cpu); }
