// Block Walsh–Hadamard rotation, for the int8 compute type's products (ops/int8_gemm.h).
//
// x · wᵀ = (x · R) · (w · R)ᵀ for any orthogonal R. With R block-diagonal, each block the
// Sylvester Hadamard matrix H_B / sqrt(B) (entries ±1 / sqrt(B), B a power of two), every
// rotated value is a signed sum of B of the originals: a few outlier channels of a row
// are spread over the whole block, so the row's 256 levels are no longer set by them, and
// the same holds for the outlier columns of each weight row (incoherence processing, as
// QuaRot and QuIP# apply it to language models' weights and activations). The weights are
// rotated once at load; the activations each call, a row at a time in cache before it is
// quantized, K · log2(B) additions a row (H_B applied as log2(B) butterfly stages).
//
// On all-MiniLM-L6-v2 (AVX2-only AMD EPYC, 800 real sentences), mean-pooled cosine to
// float32 without → with the rotation (B = 128, after the smoothing of ops/int8_gemm.h):
// 7-bit weights 0.99802 → 0.99924 (least 0.99252 → 0.99713), 8-bit weights 0.99924 →
// 0.99975 (least 0.99591 → 0.99907); a float simulation of the same products gave the
// same figures. About 2% of MiniLM's int8 time on that CPU.
#pragma once

#include <cstdint>

namespace nle::ops {

// The largest rotation block used.
inline constexpr int64_t kMaxHadamardBlock = 128;

// The block of the rotation for rows of k values: the largest power of two that divides
// k, at most kMaxHadamardBlock; 1 (no rotation) where that is below 8.
int64_t hadamard_block(int64_t k);

// Each of `rows` rows of `cols` values (contiguous) times the block-diagonal Hadamard
// matrix, in place, normalized (each block times H_B / sqrt(B)). cols must be a multiple
// of block, block a power of two; block 1 leaves x as it is.
void hadamard_rows(float* x, int64_t rows, int64_t cols, int64_t block);

namespace cpu {
// One row times the block-diagonal H_B, not normalized (each block's sums times sqrt(B)
// those of hadamard_rows): the quantization that follows takes its scale from the row.
// With src, x = H_B · (src · col_scale) (col_scale null: src itself), read in the first
// pass over the row.
void hadamard_row_unnormalized(float* x, int64_t cols, int64_t block, const float* src = nullptr,
                               const float* col_scale = nullptr);
}  // namespace cpu

namespace reference {
// hadamard_rows by the matrix itself: y[j] = Σ_i x[i] · (-1)^popcount(i & j) / sqrt(B).
void hadamard_rows(float* x, int64_t rows, int64_t cols, int64_t block);
}  // namespace reference

}  // namespace nle::ops
