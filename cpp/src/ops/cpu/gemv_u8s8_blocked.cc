#include "ops/cpu/gemv_u8s8_blocked.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "nlpengine/errors.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(NLE_AVX2_ONLY)
#  define NLE_BLOCKED_GEMV_S8 1
#  include <immintrin.h>
#endif

namespace nle::ops::cpu {

#if defined(NLE_BLOCKED_GEMV_S8)

bool gemv_u8s8_blocked_available() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vnni");
  return cpu;
}

#  pragma GCC push_options
#  pragma GCC target("avx512f,avx512bw,avx512vnni")

namespace {
static_assert(kGemvS8ColumnBlock == 64 && kGemvS8Group == 4, "a group is 4 vectors of 16 columns x 4 bytes");
constexpr int64_t kGroupBytes = kGemvS8ColumnBlock * kGemvS8Group;

// The 4 bytes of a row from column i on, those at or past k zero, in every 32-bit lane.
inline __m512i group_broadcast(const uint8_t* row, int64_t i, int64_t k) {
  uint32_t word = 0;
  std::memcpy(&word, row + i, static_cast<size_t>(std::min<int64_t>(kGemvS8Group, k - i)));
  return _mm512_set1_epi32(static_cast<int>(word));
}

// Rows 0..M of c's column block starting at column j0 (cols of them real).
template <int M>
void column_block(int32_t* c, const uint8_t* a, const int8_t* block, int64_t n, int64_t k, int64_t j0,
                  int64_t cols) {
  __m512i sum[M][4];
  for (int r = 0; r < M; ++r)
    for (int v = 0; v < 4; ++v) sum[r][v] = _mm512_setzero_si512();
  const int64_t whole = k / kGemvS8Group * kGemvS8Group;
  auto group = [&](int64_t i, bool partial) {
    const int8_t* g = block + i / kGemvS8Group * kGroupBytes;
    const __m512i w0 = _mm512_loadu_si512(g), w1 = _mm512_loadu_si512(g + 64),
                  w2 = _mm512_loadu_si512(g + 128), w3 = _mm512_loadu_si512(g + 192);
    for (int r = 0; r < M; ++r) {
      __m512i x;
      if (partial) {
        x = group_broadcast(a + r * k, i, k);
      } else {
        uint32_t word;
        std::memcpy(&word, a + r * k + i, sizeof word);
        x = _mm512_set1_epi32(static_cast<int>(word));
      }
      sum[r][0] = _mm512_dpbusd_epi32(sum[r][0], x, w0);
      sum[r][1] = _mm512_dpbusd_epi32(sum[r][1], x, w1);
      sum[r][2] = _mm512_dpbusd_epi32(sum[r][2], x, w2);
      sum[r][3] = _mm512_dpbusd_epi32(sum[r][3], x, w3);
    }
  };
  for (int64_t i = 0; i < whole; i += kGemvS8Group) group(i, false);
  if (whole < k) group(whole, true);
  for (int r = 0; r < M; ++r) {
    int32_t* out = c + r * n + j0;
    for (int v = 0; v < 4; ++v) {
      const int64_t live = std::clamp<int64_t>(cols - 16 * v, 0, 16);
      if (live == 16)
        _mm512_storeu_si512(out + 16 * v, sum[r][v]);
      else if (live > 0)
        _mm512_mask_storeu_epi32(out + 16 * v, static_cast<__mmask16>((1u << live) - 1), sum[r][v]);
    }
  }
}

// Each thread takes whole column blocks; a block's rows of a run in groups of up to 4.
void all_blocks(int32_t* c, const uint8_t* a, const int8_t* w, int64_t m, int64_t n, int64_t k,
                int64_t block_stride) {
  const int64_t blocks = (n + kGemvS8ColumnBlock - 1) / kGemvS8ColumnBlock;
#  pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kGemvS8ColumnBlock, cols = std::min(kGemvS8ColumnBlock, n - j0);
    const int8_t* block = w + b * block_stride;
    for (int64_t r = 0; r < m; r += 4) {
      int32_t* c_rows = c + r * n;
      const uint8_t* a_rows = a + r * k;
      switch (std::min<int64_t>(4, m - r)) {
        case 1:
          column_block<1>(c_rows, a_rows, block, n, k, j0, cols);
          break;
        case 2:
          column_block<2>(c_rows, a_rows, block, n, k, j0, cols);
          break;
        case 3:
          column_block<3>(c_rows, a_rows, block, n, k, j0, cols);
          break;
        default:
          column_block<4>(c_rows, a_rows, block, n, k, j0, cols);
          break;
      }
    }
  }
}
}  // namespace

void gemv_u8s8s32_blocked(int32_t* c, const uint8_t* a, const int8_t* w, int64_t m, int64_t n, int64_t k,
                          int64_t block_stride) {
  if (m < 1 || m > kGemvS8MaxRows)
    throw Error("gemv_u8s8s32_blocked: " + std::to_string(m) + " rows (1 to " +
                std::to_string(kGemvS8MaxRows) + " taken)");
  all_blocks(c, a, w, m, n, k, block_stride);
}

#  pragma GCC pop_options

#else  // no AVX-512 VNNI kernel in this build

bool gemv_u8s8_blocked_available() { return false; }

void gemv_u8s8s32_blocked(int32_t*, const uint8_t*, const int8_t*, int64_t, int64_t, int64_t, int64_t) {
  throw Error("gemv_u8s8s32_blocked: not built for this CPU");
}

#endif

}  // namespace nle::ops::cpu
