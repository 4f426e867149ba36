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

// Groups of 4 K rows per chunk when a product has more rows than one group of sums in
// registers: 64 groups x 256 bytes, 16 KB, which the later groups of rows read from L1.
constexpr int64_t kChunkGroups = 64;

// Rows 0..G of a group of rows over the block's K groups [g0, g1): the sums start from zero
// (first) or from partial (G x 64), and are left there. Meanwhile the group asks for
// prefetch_lines cache lines from prefetch on, spread over its iterations (as
// ops/cpu/gemv_f32_blocked.cc's chunk_group).
template <int R>
void chunk_rows(int32_t* partial, const uint8_t* a, int64_t k, const int8_t* block, int64_t g0, int64_t g1,
                bool first, const char* prefetch, int64_t prefetch_lines) {
  __m512i sum[R][4];
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v)
      sum[r][v] =
          first ? _mm512_setzero_si512() : _mm512_load_si512(partial + r * kGemvS8ColumnBlock + 16 * v);
  auto accumulate = [&](const int8_t* p, const __m512i* x) {
    __m512i w0 = _mm512_loadu_si512(p), w1 = _mm512_loadu_si512(p + 64), w2 = _mm512_loadu_si512(p + 128),
            w3 = _mm512_loadu_si512(p + 192);
    // In registers: GCC would fold each load into every row's dot product (as in
    // ops/cpu/gemv_f32_blocked.cc).
    __asm__("" : "+v"(w0), "+v"(w1), "+v"(w2), "+v"(w3));
    for (int r = 0; r < R; ++r) {
      sum[r][0] = _mm512_dpbusd_epi32(sum[r][0], x[r], w0);
      sum[r][1] = _mm512_dpbusd_epi32(sum[r][1], x[r], w1);
      sum[r][2] = _mm512_dpbusd_epi32(sum[r][2], x[r], w2);
      sum[r][3] = _mm512_dpbusd_epi32(sum[r][3], x[r], w3);
    }
  };
  // The groups of 4 whole K rows, then the last group of a depth that is not a multiple
  // of 4 (its missing rows zero).
  const int64_t whole_end = std::min(g1, k / kGemvS8Group);
  const int64_t steps = g1 - g0;
  int64_t owed = 0;  // prefetch_lines spread over the steps: one line per `steps` owed
  for (int64_t g = g0; g < whole_end; ++g) {
    for (owed += prefetch_lines; owed >= steps; owed -= steps, prefetch += 64)
      _mm_prefetch(prefetch, _MM_HINT_T1);
    __m512i x[R];
    for (int r = 0; r < R; ++r) {
      uint32_t word;
      std::memcpy(&word, a + r * k + g * kGemvS8Group, sizeof word);
      x[r] = _mm512_set1_epi32(static_cast<int>(word));
    }
    accumulate(block + g * kGroupBytes, x);
  }
  if (whole_end < g1) {
    __m512i x[R];
    for (int r = 0; r < R; ++r) x[r] = group_broadcast(a + r * k, whole_end * kGemvS8Group, k);
    accumulate(block + whole_end * kGroupBytes, x);
  }
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v) _mm512_store_si512(partial + r * kGemvS8ColumnBlock + 16 * v, sum[r][v]);
}

// Rows 0..m (more than 4) of c's column block starting at column j0: the block in chunks
// of kChunkGroups groups of K rows, every group of 4 rows over a chunk before the next,
// together asking for the next chunk (or the next block's first) meanwhile.
void column_block_chunked(int32_t* c, const uint8_t* a, const int8_t* block, const int8_t* next_block,
                          int64_t m, int64_t n, int64_t k, int64_t j0, int64_t cols) {
  alignas(64) int32_t partial[kGemvS8MaxRows * kGemvS8ColumnBlock];
  const int64_t depth_groups = (k + kGemvS8Group - 1) / kGemvS8Group;
  const int64_t row_groups = (m + 3) / 4;
  for (int64_t g0 = 0; g0 < depth_groups; g0 += kChunkGroups) {
    const int64_t g1 = std::min(depth_groups, g0 + kChunkGroups);
    const int8_t* ahead = g1 < depth_groups ? block + g1 * kGroupBytes : next_block;
    const int64_t ahead_lines = ahead ? (g1 < depth_groups ? std::min(kChunkGroups, depth_groups - g1)
                                                           : std::min(kChunkGroups, depth_groups)) *
                                            4
                                      : 0;
    for (int64_t q = 0; q < row_groups; ++q) {
      const int64_t r = 4 * q;
      int32_t* p = partial + r * kGemvS8ColumnBlock;
      const uint8_t* a_rows = a + r * k;
      const int64_t from = q * ahead_lines / row_groups, to = (q + 1) * ahead_lines / row_groups;
      const char* prefetch = reinterpret_cast<const char*>(ahead) + 64 * from;
      switch (std::min<int64_t>(4, m - r)) {
        case 1:
          chunk_rows<1>(p, a_rows, k, block, g0, g1, g0 == 0, prefetch, to - from);
          break;
        case 2:
          chunk_rows<2>(p, a_rows, k, block, g0, g1, g0 == 0, prefetch, to - from);
          break;
        case 3:
          chunk_rows<3>(p, a_rows, k, block, g0, g1, g0 == 0, prefetch, to - from);
          break;
        default:
          chunk_rows<4>(p, a_rows, k, block, g0, g1, g0 == 0, prefetch, to - from);
          break;
      }
    }
  }
  for (int64_t r = 0; r < m; ++r)
    std::memcpy(c + r * n + j0, partial + r * kGemvS8ColumnBlock,
                static_cast<size_t>(cols) * sizeof(int32_t));
}

// Each thread takes whole column blocks. Up to 4 rows, a block's sums stay in registers
// over all its K rows; more, it goes in chunks (column_block_chunked).
void all_blocks(int32_t* c, const uint8_t* a, const int8_t* w, int64_t m, int64_t n, int64_t k,
                int64_t block_stride) {
  const int64_t blocks = (n + kGemvS8ColumnBlock - 1) / kGemvS8ColumnBlock;
#  pragma omp parallel for schedule(static)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kGemvS8ColumnBlock, cols = std::min(kGemvS8ColumnBlock, n - j0);
    const int8_t* block = w + b * block_stride;
    switch (m) {
      case 1:
        column_block<1>(c, a, block, n, k, j0, cols);
        break;
      case 2:
        column_block<2>(c, a, block, n, k, j0, cols);
        break;
      case 3:
        column_block<3>(c, a, block, n, k, j0, cols);
        break;
      case 4:
        column_block<4>(c, a, block, n, k, j0, cols);
        break;
      default:
        column_block_chunked(c, a, block, b + 1 < blocks ? block + block_stride : nullptr, m, n, k, j0, cols);
        break;
    }
  }
}
}  // namespace

namespace {
void gemv_u8s8s32_blocked_kernel(int32_t* c, const uint8_t* a, const int8_t* w, int64_t m, int64_t n,
                                 int64_t k, int64_t block_stride) {
  if (m < 1 || m > kGemvS8MaxRows)
    throw Error("gemv_u8s8s32_blocked: " + std::to_string(m) + " rows (1 to " +
                std::to_string(kGemvS8MaxRows) + " taken)");
  all_blocks(c, a, w, m, n, k, block_stride);
}
}  // namespace

#  pragma GCC pop_options

// Outside the kernels' target: the check must not itself need the instructions.
void gemv_u8s8s32_blocked(int32_t* c, const uint8_t* a, const int8_t* w, int64_t m, int64_t n, int64_t k,
                          int64_t block_stride) {
  if (!gemv_u8s8_blocked_available())
    throw Error("gemv_u8s8s32_blocked: this CPU lacks AVX-512 VNNI (gemv_u8s8_blocked_available() is false)");
  gemv_u8s8s32_blocked_kernel(c, a, w, m, n, k, block_stride);
}

#else  // no AVX-512 VNNI kernel in this build

bool gemv_u8s8_blocked_available() { return false; }

void gemv_u8s8s32_blocked(int32_t*, const uint8_t*, const int8_t*, int64_t, int64_t, int64_t, int64_t) {
  throw Error("gemv_u8s8s32_blocked: not built for this CPU");
}

#endif

}  // namespace nle::ops::cpu
