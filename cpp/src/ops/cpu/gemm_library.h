// Which library runs the CPU matrix products. MKL is linked in; oneDNN (PyPI
// `onednn-cpu-gomp`, GNU OpenMP build) is opened at run time when present. MKL's
// kernels are tuned for Intel CPUs: on an AMD EPYC with AVX-512 VNNI, oneDNN's GEMM
// measured 2.4x MKL's in float32 and 25x in int8; on an Intel CPU with AMX (Sapphire
// Rapids) oneDNN ran MiniLM faster than MKL in every compute type. So the default is MKL
// on Intel CPUs without AMX and oneDNN elsewhere when it can be loaded.
//
// NLPENGINE_GEMM_LIBRARY=mkl|onednn overrides the choice; NLPENGINE_ONEDNN_LIBRARY
// names the oneDNN shared library to open (default: libdnnl.so.3 from the library
// search path, then from the lib directory of the Python environment this runtime is
// installed in). The choice is made once per process.
#pragma once

#include <cstdint>
#include <string>

namespace nle::ops::cpu {

enum class GemmLibrary { Mkl, OneDnn };

// The library in use (chosen on first call). Throws Error when
// NLPENGINE_GEMM_LIBRARY names an unknown library or oneDNN cannot be opened.
GemmLibrary gemm_library();
// Whether this CPU runs bf16 products natively with the library in use: AVX512-BF16
// under oneDNN, AMX under MKL (whose bf16 product runs at or below float32 speed on
// AVX512-BF16 alone).
bool native_bf16_products();
// Whether this CPU multiplies vectors of bytes faster than vectors of 16-bit values. Not
// on AMD's family 17h (Zen, Zen+, Zen 2) nor Hygon's 18h: their one vector integer
// multiplier takes vpmaddubsw and vpmaddwd alike, and 32 byte pairs need two multiplies
// (vpmaddubsw into 16-bit pair sums, vpmaddwd of those into 32 bits), as many as 32 pairs
// of 16-bit values (two vpmaddwd): on such an AMD EPYC the int16 panel kernel ran
// 1.01-1.04x the u8·s8 one (MiniLM's shapes, 1 and 2 threads). Elsewhere (Intel's cores
// have two such multipliers; VNNI adds a 4-byte dot product) bytes are taken to be faster.
bool bytes_multiply_faster_than_words();
// "MKL 2026.2.0" or "oneDNN 3.2.0 (path)": for reports.
std::string gemm_library_description();

// oneDNN's row-major products; only valid when gemm_library() is OneDnn. Throw Error
// with the library's status on failure.
namespace onednn {
void sgemm(char trans_a, char trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc);
void gemm_u8s8s32(int64_t m, int64_t n, int64_t k, const uint8_t* a, const int8_t* b_nk, int32_t* c);
// A function of the opened oneDNN library by name (for ops/cpu/onednn_matmul.cc); throws
// Error when it is missing.
void* symbol(const char* name);
}  // namespace onednn

}  // namespace nle::ops::cpu
