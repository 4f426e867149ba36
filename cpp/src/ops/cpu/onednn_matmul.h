// oneDNN's matmul primitive for the int8 products, with each weight reordered once, at
// load, into the blocked layout the primitive picks for it. oneDNN's GEMM function
// (gemm_library.h) re-packs the weight on every call instead: at 2 threads on MiniLM's
// layer shapes with 32 rows, the primitive took 169 us a layer against 202 for the GEMM
// function with its columns split over the threads (1 thread: 314 against 344
// for the GEMM function).
//
// A primitive is made for a row count (and thread count) and kept: products run in
// chunks of up to kChunkRows rows, and a chunk of more than kExactRows rows is rounded
// up to a multiple of kRowStep, so that a layer needs at most a few dozen primitives
// whatever the batch. Callers size their buffers with padded_rows().
#pragma once

#include <cstdint>
#include <memory>

namespace nle::ops::cpu::onednn {

constexpr int64_t kChunkRows = 256;
constexpr int64_t kExactRows = 8;
constexpr int64_t kRowStep = 8;

// The rows that the activation (M, K) and result (M, N) buffers of matmul_u8s8s32 must
// hold for m rows: m rounded up as described above. Rows past m are read and written.
int64_t padded_rows(int64_t m);

// An (N, K) int8 weight, stored row-major, reordered for the primitive; freed with the
// returned pointer. Only valid when gemm_library() is OneDnn. Throws Error on failure.
std::shared_ptr<void> reorder_s8_weight(const int8_t* q, int64_t n, int64_t k);

// c (M, N) = a (M, K) · wᵀ in exact int32, w from reorder_s8_weight. a and c hold
// padded_rows(m) rows; the padding rows of a must be readable (their results are
// discarded).
void matmul_u8s8s32(int32_t* c, const uint8_t* a, const void* w, int64_t m, int64_t n, int64_t k);

}  // namespace nle::ops::cpu::onednn
