// A float32 product from a weight packed once into column panels, for CPUs where neither
// GEMM library packs float32 weights ahead of time (oneDNN without AVX-512,
// packed_gemm.h). There oneDNN's GEMM function packs the weight again on every call: with
// 16 rows (a greedy decoding step of 16 sources) BART-base's products ran at 10-15 GB/s
// of weight, a third of what the memory gives, and its LM head at 8 GB/s; with 64 rows
// (beam 4) at 150-175 GFLOP/s against the panels' 165-190. With thousands of rows the
// two are level (the panels 2-6% ahead on BART-base and MiniLM shapes, AVX2-only AMD
// EPYC, 2 threads).
//
// A panel holds kPanelColumns output columns for every k, column-contiguous per k, so
// the kernel streams the weight in order and keeps a block of up to kBlockRows input
// rows times the panel's columns in registers (AVX2 and FMA: 12 of the 16 vector
// registers).
#pragma once

#include <cstdint>
#include <memory>

#include "ops/activation.h"

namespace nle::ops::cpu {

constexpr int64_t kPanelColumns = 16;
constexpr int64_t kBlockRows = 6;

// The (N, K) row-major weight in panels: ceil(N / kPanelColumns) * K * kPanelColumns
// floats, columns past N zero.
std::shared_ptr<void> pack_panels_f32(const float* w, int64_t n, int64_t k);

// c (M, N) = act(a (M, K) · wᵀ + bias (N)), w from pack_panels_f32; bias may be null.
// Any M; each row's sums run in the same order whatever M is, so a row's result does not
// depend on the rows batched with it.
void gemm_f32_panels(float* c, const float* a, const void* panels, int64_t m, int64_t n, int64_t k,
                     const float* bias, Activation act);

}  // namespace nle::ops::cpu
