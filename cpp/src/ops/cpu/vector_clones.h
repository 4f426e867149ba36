// Element-wise kernels compiled twice: for x86-64-v4 (AVX-512) and for the baseline the
// library is built for (x86-64-v3, AVX2), the version picked once, when the library loads,
// by the CPU's features (GCC's function multi-versioning). Put NLE_VECTOR_CLONES on a
// function whose loops do the work and that opens no OpenMP region of its own (the
// region's outlined body would not be cloned): a per-row or per-block kernel.
//
// On an AMD EPYC (AVX-512 on 256-bit units), building the whole library for x86-64-v4
// took MiniLM's int8 throughput from 268 to 291 sentences/s: its quantize, rescale, GELU
// and softmax passes are a third of the int8 time. The library is compiled with
// -mprefer-vector-width=512 (CMakeLists.txt), so that the x86-64-v4 clones use 512-bit
// registers, not GCC's default 256 for Intel tunings: a Sapphire Rapids has two 512-bit
// FMA units (MiniLM int8 767 -> 849 sentences/s).
#pragma once

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NLE_AVX2_ONLY)
#  define NLE_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "default")))
#else
#  define NLE_VECTOR_CLONES
#endif
