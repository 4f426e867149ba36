// The block Hadamard rotation of ops/hadamard.h on 16 lanes, for the AVX-512 passes that
// rotate int8's activations before quantizing them (ops/cpu/int8_gemm_cpu.cc): the spans
// 1, 2, 4 and 8 inside the vector the pass that writes the row already holds, the wider
// spans two at a time over the row in L1, the last of those passes also finding the
// row's range for the quantization. The same butterflies in the same order as
// hadamard_row_unnormalized, so the same bits. Compiled for AVX-512 F/BW/VL/DQ whatever
// the file's target (callers check avx512_rows_supported()); x86-64 with GCC or Clang.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "ops/cpu/avx512_rows.h"

namespace nle::ops::cpu {

// The butterflies of spans 1, 2, 4 and 8 below `block` on the 16 lanes of v: lane i
// against lane i ^ h, times the sign lane i takes (+ where bit h of i is clear, - where
// set), added — x_i + x_{i+h} and x_i - x_{i+h}, rounded once as the scalar stages round
// them. The spans up to 4 stay inside each half of 8 lanes, so with block 8 a row's last
// half vector (its other lanes zero) is rotated alone.
NLE_AVX512_ROWS_TARGET inline __m512 hadamard16(__m512 v, int64_t block) {
  const __m512 sign1 = _mm512_setr_ps(1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1, 1, -1);
  const __m512 sign2 = _mm512_setr_ps(1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1, 1, 1, -1, -1);
  const __m512 sign4 = _mm512_setr_ps(1, 1, 1, 1, -1, -1, -1, -1, 1, 1, 1, 1, -1, -1, -1, -1);
  const __m512 sign8 = _mm512_setr_ps(1, 1, 1, 1, 1, 1, 1, 1, -1, -1, -1, -1, -1, -1, -1, -1);
  v = _mm512_fmadd_ps(v, sign1, _mm512_permute_ps(v, 0xB1));
  v = _mm512_fmadd_ps(v, sign2, _mm512_permute_ps(v, 0x4E));
  v = _mm512_fmadd_ps(v, sign4, _mm512_shuffle_f32x4(v, v, 0xB1));  // 128-bit quarters 1 0 3 2
  if (block >= 16) v = _mm512_fmadd_ps(v, sign8, _mm512_shuffle_f32x4(v, v, 0x4E));  // 2 3 0 1
  return v;
}

// The least and largest of a row (0 included, as every quantized row's range holds 0).
struct RowRange {
  __m512 lo, hi;
  NLE_AVX512_ROWS_TARGET RowRange() : lo(_mm512_setzero_ps()), hi(_mm512_setzero_ps()) {}
  NLE_AVX512_ROWS_TARGET void add(__m512 v) {
    lo = _mm512_min_ps(lo, v);
    hi = _mm512_max_ps(hi, v);
  }
  NLE_AVX512_ROWS_TARGET float least() const { return _mm512_reduce_min_ps(lo); }
  NLE_AVX512_ROWS_TARGET float largest() const { return _mm512_reduce_max_ps(hi); }
};

// The spans from 16 up to block / 2 over the row x (cols values, a multiple of block,
// already through hadamard16), two spans a pass, the range of the result added to `range`
// in the last pass. Returns false, touching nothing, where block < 32: then the pass that
// wrote the row holds the final values and finds the range itself.
NLE_AVX512_ROWS_TARGET inline bool hadamard_wide_spans(float* x, int64_t cols, int64_t block,
                                                       RowRange& range) {
  if (block < 32) return false;
  int64_t h = 16;
  for (; 4 * h <= block; h *= 4) {
    const bool last = 4 * h == block;
    for (int64_t g = 0; g < cols; g += 4 * h)
      for (int64_t i = g; i < g + h; i += 16) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + h);
        const __m512 c = _mm512_loadu_ps(x + i + 2 * h), d = _mm512_loadu_ps(x + i + 3 * h);
        const __m512 p = _mm512_add_ps(a, b), q = _mm512_sub_ps(a, b);
        const __m512 r = _mm512_add_ps(c, d), t = _mm512_sub_ps(c, d);
        const __m512 y0 = _mm512_add_ps(p, r), y1 = _mm512_add_ps(q, t);
        const __m512 y2 = _mm512_sub_ps(p, r), y3 = _mm512_sub_ps(q, t);
        _mm512_storeu_ps(x + i, y0);
        _mm512_storeu_ps(x + i + h, y1);
        _mm512_storeu_ps(x + i + 2 * h, y2);
        _mm512_storeu_ps(x + i + 3 * h, y3);
        if (last) {
          range.add(y0);
          range.add(y1);
          range.add(y2);
          range.add(y3);
        }
      }
  }
  if (h < block)  // one span left (h = block / 2)
    for (int64_t g = 0; g < cols; g += 2 * h)
      for (int64_t i = g; i < g + h; i += 16) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + h);
        const __m512 y0 = _mm512_add_ps(a, b), y1 = _mm512_sub_ps(a, b);
        _mm512_storeu_ps(x + i, y0);
        _mm512_storeu_ps(x + i + h, y1);
        range.add(y0);
        range.add(y1);
      }
  return true;
}

// x = H_B · values, B = block (8 to 128, a power of two dividing cols), not normalized,
// and the range of x added to `range`: value(c, mask) gives the 16 values from column c
// (the lanes outside mask 0), in one pass that rotates them by hadamard16 as it writes x.
template <class Values>
NLE_AVX512_ROWS_TARGET inline void hadamard_row_avx512(float* x, int64_t cols, int64_t block, Values value,
                                                       RowRange& range) {
  const bool rotated_in_first_pass = block < 32;
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m512 v = hadamard16(value(c, static_cast<__mmask16>(0xffff)), block);
    _mm512_storeu_ps(x + c, v);
    if (rotated_in_first_pass) range.add(v);
  }
  if (c < cols) {  // 8 values (block 8): the upper lanes 0, left out of the row
    const __mmask16 m = lanes_before(c, cols);
    const __m512 v = _mm512_maskz_mov_ps(m, hadamard16(value(c, m), block));
    _mm512_mask_storeu_ps(x + c, m, v);
    if (rotated_in_first_pass) range.add(v);
  }
  hadamard_wide_spans(x, cols, block, range);
}

}  // namespace nle::ops::cpu
