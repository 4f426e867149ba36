// oneDNN's matmul primitive for the int8, bf16 and float32 products, with each weight
// reordered once (int8 at load, the others on first use) into the blocked layout the
// primitive picks for it; bias and activation run in the primitive's kernel (post-ops).
// oneDNN's GEMM function (gemm_library.h) re-packs the weight on every call instead: at 2
// threads on MiniLM's layer shapes with 32 rows, the primitive took 169 us a layer against
// 202 for the GEMM function with its columns split over the threads (1 thread: 314 against
// 344 for the GEMM function). oneDNN's C GEMM API has no bf16 at all; its bf16 matmul runs
// AVX512-BF16 kernels (MiniLM bf16 76.6 -> 161.7 sent/s against MKL's bf16 product on an
// AMD EPYC).
//
// A primitive is made for a row count (and thread count) and kept, shared by the weights
// of a shape: products run in chunks of up to kChunkRows rows, and a chunk of more than
// kExactRows rows is rounded up to a multiple of kRowStep, so that a weight shape needs
// at most kExactRows + (kChunkRows - kExactRows) / kRowStep primitives whatever the
// batch. Callers whose buffers hold padded_rows() rows say so (a_padded, c_padded); the
// others' chunks are copied into padded buffers or split (kSplitCopyFraction). Each chunk
// is a parallel region of its own, ending in a barrier: on an AMD EPYC (Zen 4), MiniLM
// batches of 32 sentences of 8-128 tokens (about 2,200 rows) ran at 224.3/224.7
// sentences/s in bf16 with chunks of 256 rows and 233.4/234.0 with 1,024 (float32
// 125.0/124.5 -> 126.5/130.1).
#pragma once

#include <cstdint>
#include <memory>

#include "ops/activation.h"

namespace nle::ops::cpu::onednn {

constexpr int64_t kChunkRows = 1024;
// Up to kExactRows rows (decoding steps, single sentences) a product runs on a primitive
// of its exact rows; past that, rounded up to a multiple of kRowStep. On an AMD EPYC (Zen
// 4), 2 threads, against rounding up from 8 rows on: BART-base float32 greedy decoding of
// 13 rows 543/546 -> 584/606 tokens/s, 29 rows 691/649 -> 741/729, 61 rows 757/753 ->
// 779/770 (against the split below), int8-mixed 13 rows 1380/1369 -> 1515/1467; MiniLM,
// one sentence of 29 tokens, float32 4.30/4.20 -> 3.65/3.72 ms (1 thread 8.22/7.97 ->
// 7.37/7.01), of 33-64 tokens (medians over the lengths) float32 6.55 -> 6.10 ms, int8
// 2.66 -> 2.52. A new row count costs MiniLM about 1.5 ms of primitive creation, once.
constexpr int64_t kExactRows = 64;
constexpr int64_t kRowStep = 8;
// A chunk of rows that are not a whole number of kRowStep, from buffers without room for
// the padding, is copied into padded buffers (and its results back out) where that moves
// less than 1/kSplitCopyFraction of the weight's bytes, and split in two products
// otherwise (the rows of whole steps, then the rest exactly), which reads the weight
// twice. On an AMD EPYC (Zen 4), 2 threads, against copying every such chunk (with exact
// rows up to 8): MiniLM, 32 sentences of 6-40 tokens a batch (the copies 2-4 times the
// weights' bytes), float32 325.0/321.5 -> 389.6/386.9 sentences/s, bf16 568.9/583.7 ->
// 697.8/706.7; one sentence of 29 tokens (0.09-0.15 of each weight) float32 5.80/5.68 ->
// 4.57/4.59 ms; BART-base greedy decoding of 61 rows (0.08-0.16) 686/734 -> 728/757
// tokens/s, but of 29 rows (0.04-0.08) 666/664 -> 646/627 and of 13 rows 472/476 ->
// 440/447.
constexpr int64_t kSplitCopyFraction = 12;

// bf16 and int8 products of at least threads * kThreadRowsMin rows run as one one-thread
// primitive per thread on an equal share of the rows, each share a multiple of
// kThreadRowStep rows. A primitive planned for 2 threads split MiniLM's products unevenly:
// its second thread spent 17% of its time waiting in libgomp, 7% with shares (perf,
// Sapphire Rapids, 2 threads). MiniLM bf16, alternating runs, sentences/s: batches of 32
// sentences of 8-128 tokens 855 -> 878, of 6-40 tokens 2,351 -> 2,482; BERT-base sizes
// 138 -> 144; int8-mixed the same. Float32 keeps the primitive's split (BERT-base 29.3 ->
// 28.2 with shares: each thread then reads the whole float32 weight).
constexpr int64_t kThreadRowsMin = 256;
constexpr int64_t kThreadRowStep = 32;
static_assert(kThreadRowStep % kRowStep == 0 && kChunkRows % kThreadRowStep == 0,
              "a thread's share is whole steps and whole chunks cut it at whole steps");

// The rows that the activation (M, K) buffer (and, when padded, the result (M, N) buffer)
// of matmul must hold for m rows: m rounded up as described above.
int64_t padded_rows(int64_t m);

// The products made: u8 activations · s8 weights → exact s32, bf16 · bf16 → f32, and f32.
enum class MatmulType { U8S8S32, BF16BF16F32, F32F32F32 };

// Whether oneDNN has this product for this CPU: its bf16 matmul needs AVX-512 (and
// runs AVX512-BF16 or AMX kernels where the CPU has them). Probed once per type by
// asking for a primitive. Only valid when gemm_library() is OneDnn.
bool implemented(MatmulType type);
// Whether that primitive takes the weight in a blocked layout of its own, packed once by
// reorder_weight. Without AVX-512, oneDNN 3.2's float32 matmul is its GEMM function
// behind the primitive interface: it takes the plain weight and packs it again on every
// call, i.e. for every chunk of kChunkRows rows (MiniLM's and T5's feed-forward shapes
// ran at 80-120 GFLOP/s that way, against 165-185 for the GEMM function on all rows at
// once, on an AVX2-only AMD EPYC).
bool packs_weights(MatmulType type);

// An (N, K) weight (int8, or bf16 bit patterns), stored row-major, reordered for the
// primitive; freed with the returned pointer. Only valid when gemm_library() is OneDnn.
// Throws Error on failure.
std::shared_ptr<void> reorder_weight(const void* w, MatmulType type, int64_t n, int64_t k);

// What a product does to its results before writing them (float32 results only): add a bias
// (N floats, or none), apply an activation, and write them as bf16 instead of float32.
// The product's own kernel does this, on results still in registers.
struct Epilogue {
  const float* bias = nullptr;
  Activation act = Activation::None;
  bool bf16_out = false;
};

// Whether products of a few rows on w (from reorder_weight) run a kernel of their own
// instead of a primitive: float32 weights in the layout of ops/cpu/gemv_f32_blocked.h, bf16
// ones in that of ops/cpu/gemv_bf16_blocked.h and int8 ones in that of
// ops/cpu/gemv_u8s8_blocked.h, where the CPU runs the kernel: float32 and int8 up to 64
// rows (int8 up to 4 where oneDNN multiplies int8 with AMX), bf16 up to 4.
bool few_rows_read_directly(const void* w);

// c (M, N) = a (M, K) · wᵀ, then the epilogue; w from reorder_weight. With a_padded, a holds
// padded_rows(m) rows, the padding readable (their results are discarded); so does c
// with c_padded. Where few_rows_read_directly(w), a few rows run its kernel. Otherwise (a or c holds only m
// rows) a chunk of rows that are not a whole number of kRowStep is copied or split (kSplitCopyFraction).
void matmul(void* c, const void* a, const void* w, int64_t m, int64_t n, int64_t k, bool a_padded,
            bool c_padded, const Epilogue& epilogue = {});

}  // namespace nle::ops::cpu::onednn
