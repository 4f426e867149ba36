#include "ops/cpu/gemv_bf16_blocked.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "nlpengine/errors.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_BLOCKED_GEMV_BF16 1
#  include <immintrin.h>
#endif

namespace nle::ops::cpu {

#if defined(NLE_BLOCKED_GEMV_BF16)

bool gemv_bf16_blocked_available() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512bf16");
  return cpu;
}

#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vl,avx512bf16")

namespace {
static_assert(kGemvBf16ColumnBlock == 64 && kGemvBf16Pair == 2, "a pair is 4 vectors of 16 columns x 2 bf16");
constexpr int64_t kPairElements = kGemvBf16ColumnBlock * kGemvBf16Pair;

// The pair of a row from column i on (the element at k, if any, zero), in every 32-bit lane.
inline __m512bh pair_broadcast(const uint16_t* row, int64_t i, int64_t k) {
  uint32_t word = 0;
  std::memcpy(&word, row + i,
              static_cast<size_t>(std::min<int64_t>(kGemvBf16Pair, k - i)) * sizeof(uint16_t));
  return reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(word)));
}

inline __m512bh load_pairs(const uint16_t* p) { return reinterpret_cast<__m512bh>(_mm512_loadu_si512(p)); }

// Rows 0..M of c's column block starting at column j0 (cols of them real).
template <int M>
void column_block(void* c, const uint16_t* a, const uint16_t* block, int64_t n, int64_t k, int64_t j0,
                  int64_t cols, const float* bias, Activation act, bool c_bf16) {
  __m512 sum[M][4];
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < 4; ++v) sum[r][v] = _mm512_setzero_ps();
  auto pair = [&](int64_t i, bool partial) {
    const uint16_t* p = block + i / kGemvBf16Pair * kPairElements;
    const __m512bh w0 = load_pairs(p), w1 = load_pairs(p + 32), w2 = load_pairs(p + 64),
                   w3 = load_pairs(p + 96);
    for (int r = 0; r < M; ++r) {
      __m512bh x;
      if (partial) {
        x = pair_broadcast(a + r * k, i, k);
      } else {
        uint32_t word;
        std::memcpy(&word, a + r * k + i, sizeof word);
        x = reinterpret_cast<__m512bh>(_mm512_set1_epi32(static_cast<int>(word)));
      }
      sum[r][0] = _mm512_dpbf16_ps(sum[r][0], x, w0);
      sum[r][1] = _mm512_dpbf16_ps(sum[r][1], x, w1);
      sum[r][2] = _mm512_dpbf16_ps(sum[r][2], x, w2);
      sum[r][3] = _mm512_dpbf16_ps(sum[r][3], x, w3);
    }
  };
  const int64_t whole = k / kGemvBf16Pair * kGemvBf16Pair;
  for (int64_t i = 0; i < whole; i += kGemvBf16Pair) pair(i, false);
  if (whole < k) pair(whole, true);
  for (int r = 0; r < M; ++r) {
    alignas(64) float values[kGemvBf16ColumnBlock];
    for (int v = 0; v < 4; ++v) {
      __m512 s = sum[r][v];
      if (bias) {
        const int64_t live = std::clamp<int64_t>(cols - 16 * v, 0, 16);
        const auto mask = static_cast<__mmask16>(live == 16 ? 0xffff : (1u << live) - 1);
        s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(mask, bias + j0 + 16 * v));
      }
      _mm512_store_ps(values + 16 * v, s);
    }
    if (act != Activation::None) activate_f32(values, cols, act);
    if (c_bf16) {
      uint16_t* out = static_cast<uint16_t*>(c) + r * n + j0;
      for (int v = 0; v < 4; ++v) {
        const int64_t live = std::clamp<int64_t>(cols - 16 * v, 0, 16);
        if (live == 0) break;
        const __m256i rounded =
            reinterpret_cast<__m256i>(_mm512_cvtneps_pbh(_mm512_load_ps(values + 16 * v)));
        _mm256_mask_storeu_epi16(out + 16 * v, static_cast<__mmask16>(live == 16 ? 0xffff : (1u << live) - 1),
                                 rounded);
      }
    } else {
      std::memcpy(static_cast<float*>(c) + r * n + j0, values, static_cast<size_t>(cols) * sizeof(float));
    }
  }
}

// Each thread takes whole column blocks; a block's rows of a run in groups of up to 4.
void all_blocks(void* c, const uint16_t* a, const uint16_t* w, int64_t m, int64_t n, int64_t k,
                int64_t block_stride, const float* bias, Activation act, bool c_bf16) {
  const int64_t blocks = (n + kGemvBf16ColumnBlock - 1) / kGemvBf16ColumnBlock;
  const int64_t c_bytes = c_bf16 ? 2 : 4;
#  pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kGemvBf16ColumnBlock, cols = std::min(kGemvBf16ColumnBlock, n - j0);
    const uint16_t* block = w + b * block_stride;
    for (int64_t r = 0; r < m; r += 4) {
      void* c_rows = static_cast<uint8_t*>(c) + r * n * c_bytes;
      const uint16_t* a_rows = a + r * k;
      switch (std::min<int64_t>(4, m - r)) {
        case 1:
          column_block<1>(c_rows, a_rows, block, n, k, j0, cols, bias, act, c_bf16);
          break;
        case 2:
          column_block<2>(c_rows, a_rows, block, n, k, j0, cols, bias, act, c_bf16);
          break;
        case 3:
          column_block<3>(c_rows, a_rows, block, n, k, j0, cols, bias, act, c_bf16);
          break;
        default:
          column_block<4>(c_rows, a_rows, block, n, k, j0, cols, bias, act, c_bf16);
          break;
      }
    }
  }
}
}  // namespace

namespace {
void gemv_bf16_blocked_kernel(void* c, const uint16_t* a, const uint16_t* w, int64_t m, int64_t n, int64_t k,
                              int64_t block_stride, const float* bias, Activation act, bool c_bf16) {
  if (m < 1 || m > kGemvBf16MaxRows)
    throw Error("gemv_bf16_blocked: " + std::to_string(m) + " rows (1 to " +
                std::to_string(kGemvBf16MaxRows) + " taken)");
  all_blocks(c, a, w, m, n, k, block_stride, bias, act, c_bf16);
}
}  // namespace

#  pragma GCC pop_options

// Outside the kernels' target: the check must not itself need the instructions.
void gemv_bf16_blocked(void* c, const uint16_t* a, const uint16_t* w, int64_t m, int64_t n, int64_t k,
                       int64_t block_stride, const float* bias, Activation act, bool c_bf16) {
  if (!gemv_bf16_blocked_available())
    throw Error("gemv_bf16_blocked: this CPU lacks AVX512-BF16 (gemv_bf16_blocked_available() is false)");
  gemv_bf16_blocked_kernel(c, a, w, m, n, k, block_stride, bias, act, c_bf16);
}

#else  // no AVX512-BF16 kernel in this build

bool gemv_bf16_blocked_available() { return false; }

void gemv_bf16_blocked(void*, const uint16_t*, const uint16_t*, int64_t, int64_t, int64_t, int64_t,
                       const float*, Activation, bool) {
  throw Error("gemv_bf16_blocked: not built for this CPU");
}

#endif

}  // namespace nle::ops::cpu
