// Helpers of the AVX-512 row passes (layer norm, int8 quantize and dequantize rows):
// compiled for AVX-512 F/BW/VL/DQ whatever the file's target, inlined into the passes'
// AVX-512 regions (#pragma GCC target), whose callers check avx512_rows_supported() at run
// time. x86-64 with GCC or Clang only.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ops/cpu/gelu_table.h"
#include "ops/cpu/vector_math.h"

namespace nle::ops::cpu {

#define NLE_AVX512_ROWS_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512dq")))

// Whether this CPU runs the AVX-512 rows.
inline bool avx512_rows_supported() {
  static const bool cpu = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
  return cpu;
}

// The lanes of a step of 16 from c that fall before cols.
NLE_AVX512_ROWS_TARGET inline __mmask16 lanes_before(int64_t c, int64_t cols) {
  return cols - c >= 16 ? static_cast<__mmask16>(0xffff) : static_cast<__mmask16>((1u << (cols - c)) - 1);
}

// float_to_bf16_bits (core/half.h) on 16 lanes: the same bits, denormals and NaN included
// (vcvtneps2bf16 would flush denormals).
NLE_AVX512_ROWS_TARGET inline __m256i bf16_bits16(__m512 v) {
  const __m512i bits = _mm512_castps_si512(v);
  const __m512i odd = _mm512_and_si512(_mm512_srli_epi32(bits, 16), _mm512_set1_epi32(1));
  const __m512i rounded =
      _mm512_srli_epi32(_mm512_add_epi32(bits, _mm512_add_epi32(odd, _mm512_set1_epi32(0x7fff))), 16);
  const __mmask16 nan = _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  return _mm512_cvtepi32_epi16(
      _mm512_mask_or_epi32(rounded, nan, _mm512_srli_epi32(bits, 16), _mm512_set1_epi32(0x40)));
}

// Whether this CPU rounds floats to bf16 in one instruction (vcvtneps2bf16, AVX512-BF16).
inline bool bf16_conversion_supported() {
  static const bool cpu = __builtin_cpu_supports("avx512bf16") != 0;
  return cpu;
}

// bf16_bits16 by vcvtneps2bf16 (written as assembly: the passes that call this are
// compiled for CPUs without AVX512-BF16 too) where no lane is denormal, and by
// bf16_bits16 where one is: the instruction rounds to nearest even and quiets NaN as
// bf16_bits16 does, but flushes denormals to zero. The same bits, for 4 instructions
// instead of 10: the pass that rounds int8-mixed's feed-forward activations to bf16 was
// 5.5% of MiniLM's samples on a Sapphire Rapids. Only where bf16_conversion_supported().
NLE_AVX512_ROWS_TARGET inline __m256i bf16_bits16_converted(__m512 v) {
  if (__builtin_expect(_mm512_fpclass_ps_mask(v, 0x20) != 0, 0)) return bf16_bits16(v);  // 0x20: denormal
  __m256i out;
  asm("vcvtneps2bf16 %1, %0" : "=v"(out) : "v"(v));
  return out;
}

// bf16_bits16(v), by the CPU's conversion where `converts` (bf16_conversion_supported()).
NLE_AVX512_ROWS_TARGET inline __m256i bf16_bits16(__m512 v, bool converts) {
  return converts ? bf16_bits16_converted(v) : bf16_bits16(v);
}

// The coefficient of a^power of each lane's interval.
NLE_AVX512_ROWS_TARGET inline __m512 gelu_table_coefficient(int power, __m512i interval) {
  return _mm512_permutex2var_ps(_mm512_load_ps(kGeluTable[power]), interval,
                                _mm512_load_ps(kGeluTable[power] + 16));
}

// GELU(x) = x Φ(x) on 16 lanes as max(x, 0) + g(a), a = min(|x|, 5.5), g(a) = -a Φ(-a) by a
// cubic in a for each of 32 intervals (gelu_table.h, fitted by scripts/fit_gelu_table.py):
// the interval's number is the low 5 bits of a · k + 1.5 · 2^23, which vpermt2ps takes as
// its index into the 32 coefficients of each power held in two registers. 11 vector
// operations — vrangeps for a, one fused multiply-add for the index, four permutations,
// three multiply-adds, vmaxps, vaddps — where erf_f32's rational took 19 with a division:
// 0.207 -> 0.106 ns a value on a Sapphire Rapids (1,536 values in L1), and more accurate,
// 4.9e-7 absolute against a float64 GELU over [-12, 12] (the rational: 7.4e-7). NaN stays
// NaN; ±inf give ±inf and 0 (-1e-7). int8 1,052 -> 1,092 and int8-mixed 879 -> 937
// sentences/s on MiniLM, 8–128 tokens (8 alternating runs).
NLE_AVX512_ROWS_TARGET inline __m512 gelu_erf16(__m512 x) {
  // imm 0x0A: the smaller magnitude of x and the limit, its sign bit cleared.
  const __m512 a = _mm512_range_ps(x, _mm512_set1_ps(kGeluTableLimit), 0x0A);
  const __m512i interval =
      _mm512_castps_si512(_mm512_fmadd_ps(a, _mm512_set1_ps(kGeluTableScale), _mm512_set1_ps(12582912.f)));
  __m512 g = gelu_table_coefficient(3, interval);
  g = _mm512_fmadd_ps(g, a, gelu_table_coefficient(2, interval));
  g = _mm512_fmadd_ps(g, a, gelu_table_coefficient(1, interval));
  g = _mm512_fmadd_ps(g, a, gelu_table_coefficient(0, interval));
  // max(0, x) in this order: vmaxps gives its second operand where one is NaN.
  return _mm512_add_ps(_mm512_max_ps(_mm512_setzero_ps(), x), g);
}

}  // namespace nle::ops::cpu
