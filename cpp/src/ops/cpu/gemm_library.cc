#include "ops/cpu/gemm_library.h"

#include <cpuid.h>
#include <dlfcn.h>
#include <mkl.h>
#include <omp.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "nlpengine/errors.h"

namespace nle::ops::cpu {

namespace {

// The few oneDNN C functions used, declared here so that building needs no oneDNN
// headers (oneDNN 3.x ABI: dnnl_dim_t is int64_t, status 0 is success).
using DnnlStatus = int;
using DnnlSgemm = DnnlStatus (*)(char, char, int64_t, int64_t, int64_t, float, const float*, int64_t,
                                 const float*, int64_t, float, float*, int64_t);
using DnnlGemmU8S8S32 = DnnlStatus (*)(char, char, char, int64_t, int64_t, int64_t, float, const uint8_t*,
                                       int64_t, uint8_t, const int8_t*, int64_t, int8_t, float, int32_t*,
                                       int64_t, const int32_t*);
struct DnnlVersion {
  int major, minor, patch;
  const char* hash;
  unsigned cpu_runtime, gpu_runtime;
};
using DnnlVersionFn = const DnnlVersion* (*)();
constexpr unsigned kDnnlRuntimeOmp = 2;

struct State {
  GemmLibrary library = GemmLibrary::Mkl;
  std::string description;
  void* onednn = nullptr;  // dlopen handle
  DnnlSgemm sgemm = nullptr;
  DnnlGemmU8S8S32 gemm_u8s8s32 = nullptr;
};

// The CPU's vendor string ("GenuineIntel", "AuthenticAMD", ...); empty without CPUID.
std::string cpu_vendor() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return "";
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  return vendor;
}

bool intel_cpu() { return cpu_vendor() == "GenuineIntel"; }

// The CPU's family as CPUID leaf 1 gives it (base family, plus the extended family where
// the base is 0xF); 0 without CPUID.
unsigned cpu_family() {
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
  const unsigned base = (eax >> 8) & 0xF;
  return base == 0xF ? base + ((eax >> 20) & 0xFF) : base;
}

// An Intel CPU where MKL is the default: one without AMX. With AMX (Sapphire Rapids),
// oneDNN ran MiniLM faster in every compute type (2 threads, MKL's run then oneDNN's,
// sentences/s: float32 229 -> 235, bf16 507 -> 637, int8 612 -> 626, int8-mixed 473 -> 585;
// one sentence of 32 tokens, 1 thread, two runs each, ms: float32 4.97/4.88 -> 4.84/4.18,
// bf16 2.63/2.38 -> 1.89/1.69; int8 1.39/1.20 -> 1.28 once onednn_matmul.cc leaves its
// products of more than 4 rows to AMX).
bool intel_cpu_without_amx() {
  if (!intel_cpu()) return false;
#if defined(__GNUC__) && !defined(__clang__) && !defined(NLE_AVX2_ONLY)
  __builtin_cpu_init();
  return __builtin_cpu_supports("amx-bf16") == 0;
#else
  return true;
#endif
}

// Where to look for oneDNN: the named file, the library search path, then the lib
// directory of the environment this runtime was installed into (pip puts the
// package's libdnnl.so.3 in <prefix>/lib; the Python extension lives in
// <prefix>/lib/pythonX.Y/site-packages/nlpengine).
std::vector<std::string> onednn_candidates() {
  if (const char* path = std::getenv("NLPENGINE_ONEDNN_LIBRARY"); path && *path) return {path};
  std::vector<std::string> out = {"libdnnl.so.3"};
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(&onednn_candidates), &info) && info.dli_fname) {
    std::string dir(info.dli_fname);
    for (int up = 0; up < 4; ++up) {
      const size_t slash = dir.rfind('/');
      if (slash == std::string::npos) break;
      dir.resize(slash);
      out.push_back(dir + "/libdnnl.so.3");
    }
  }
  return out;
}

// Opens oneDNN; "" on success, else why not.
std::string open_onednn(State& s) {
  std::string tried;
  for (const std::string& path : onednn_candidates()) {
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      tried += (tried.empty() ? "" : ", ") + path;
      continue;
    }
    const auto version = reinterpret_cast<DnnlVersionFn>(dlsym(handle, "dnnl_version"));
    s.sgemm = reinterpret_cast<DnnlSgemm>(dlsym(handle, "dnnl_sgemm"));
    s.gemm_u8s8s32 = reinterpret_cast<DnnlGemmU8S8S32>(dlsym(handle, "dnnl_gemm_u8s8s32"));
    const DnnlVersion* v = version ? version() : nullptr;
    if (!v || v->major != 3 || !s.sgemm || !s.gemm_u8s8s32) {
      dlclose(handle);
      return path + " is not oneDNN 3.x";
    }
    if (v->cpu_runtime != kDnnlRuntimeOmp) {
      dlclose(handle);  // a TBB or sequential build would ignore the model's threads
      return path + " is not an OpenMP build of oneDNN (install onednn-cpu-gomp)";
    }
    Dl_info info{};
    std::string where = path;
    if (dladdr(reinterpret_cast<void*>(s.sgemm), &info) && info.dli_fname) where = info.dli_fname;
    s.onednn = handle;
    s.description = "oneDNN " + std::to_string(v->major) + "." + std::to_string(v->minor) + "." +
                    std::to_string(v->patch) + " (" + where + ")";
    return "";
  }
  return "cannot open " + tried;
}

std::string mkl_description() {
  MKLVersion v;
  mkl_get_version(&v);
  return "MKL " + std::to_string(v.MajorVersion) + "." + std::to_string(v.MinorVersion) + "." +
         std::to_string(v.UpdateVersion);
}

const State& state() {
  static State s;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("NLPENGINE_GEMM_LIBRARY");
    const std::string wanted = env ? env : "";
    if (!wanted.empty() && wanted != "mkl" && wanted != "onednn") {
      failure = "NLPENGINE_GEMM_LIBRARY=" + wanted + ": expected mkl or onednn";
      return;
    }
    if (wanted == "onednn" || (wanted.empty() && !intel_cpu_without_amx())) {
      const std::string why = open_onednn(s);
      if (why.empty()) {
        s.library = GemmLibrary::OneDnn;
        return;
      }
      if (wanted == "onednn") {
        failure = "NLPENGINE_GEMM_LIBRARY=onednn: " + why;
        return;
      }
    }
    s.library = GemmLibrary::Mkl;
    s.description = mkl_description();
  });
  if (!failure.empty()) throw Error(failure);
  return s;
}

void check(DnnlStatus status, const char* what) {
  if (status != 0)
    throw Error(std::string("oneDNN ") + what + " failed with status " + std::to_string(status));
}

}  // namespace

GemmLibrary gemm_library() { return state().library; }

bool native_bf16_products() {
  static const bool native = [] {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__) && !defined(NLE_AVX2_ONLY)
    __builtin_cpu_init();
    if (gemm_library() == GemmLibrary::OneDnn) return __builtin_cpu_supports("avx512bf16") != 0;
    return __builtin_cpu_supports("amx-bf16") != 0;
#else
    return false;
#endif
  }();
  return native;
}
bool bytes_multiply_faster_than_words() {
  static const bool faster = [] {
    const std::string vendor = cpu_vendor();
    const unsigned family = cpu_family();
    return !((vendor == "AuthenticAMD" && family == 0x17) || (vendor == "HygonGenuine" && family == 0x18));
  }();
  return faster;
}

std::string gemm_library_description() { return state().description; }

namespace onednn {

namespace {

// oneDNN's GEMM functions re-pack a transposed B on every call, and with few rows of A
// they split the work so that each thread packs all of B. Below this many rows the threads split
// the columns instead, each packing and multiplying its own part of B: at 2 threads
// on MiniLM's layer shapes, 32 rows took 364 us a layer instead of 643 (float32) and
// 90 instead of 103 (int8); 256 rows 2,205 instead of 2,402.
constexpr int64_t kColumnSplitRows = 256;
constexpr int64_t kColumnBlock = 16;

// Calls run(first column, column count) over parts of [0, n), one per thread, when
// that pays; returns false (having run nothing) when it does not.
template <typename Run>
bool split_columns(int64_t m, int64_t n, Run run) {
  const int threads = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (threads < 2 || m > kColumnSplitRows || n < 2 * kColumnBlock) return false;
  const int64_t part = (n + threads - 1) / threads;
  const int64_t step = (part + kColumnBlock - 1) / kColumnBlock * kColumnBlock;
  DnnlStatus failure = 0;
#pragma omp parallel num_threads(threads)
  {
    const int64_t first = omp_get_thread_num() * step;
    if (first < n) {
      const DnnlStatus status = run(first, std::min(step, n - first));
      if (status != 0) {
#pragma omp critical(nle_onednn_status)
        failure = status;
      }
    }
  }
  check(failure, "split product");
  return true;
}

}  // namespace

void sgemm(char trans_a, char trans_b, int64_t m, int64_t n, int64_t k, float alpha, const float* a,
           int64_t lda, const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  const State& s = state();
  const bool b_transposed = trans_b == 'T' || trans_b == 't';
  // A plain B is multiplied in place (no packing to share out): oneDNN's own threading.
  const auto part = [&](int64_t first, int64_t count) {
    return s.sgemm(trans_a, trans_b, m, count, k, alpha, a, lda, b + first * ldb, ldb, beta, c + first, ldc);
  };
  const bool split = b_transposed && split_columns(m, n, part);
  if (!split) check(s.sgemm(trans_a, trans_b, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc), "sgemm");
}

void* symbol(const char* name) {
  const State& s = state();
  void* f = s.onednn ? dlsym(s.onednn, name) : nullptr;
  if (!f) throw Error(std::string("oneDNN: no function ") + name + " in " + s.description);
  return f;
}

void gemm_u8s8s32(int64_t m, int64_t n, int64_t k, const uint8_t* a, const int8_t* b_nk, int32_t* c) {
  const State& s = state();
  const int32_t no_offset = 0;
  const bool split = split_columns(m, n, [&](int64_t first, int64_t count) {
    return s.gemm_u8s8s32('N', 'T', 'F', m, count, k, 1.f, a, k, 0, b_nk + first * k, k, 0, 0.f, c + first, n,
                          &no_offset);
  });
  if (!split)
    check(s.gemm_u8s8s32('N', 'T', 'F', m, n, k, 1.f, a, k, 0, b_nk, k, 0, 0.f, c, n, &no_offset),
          "gemm_u8s8s32");
}

}  // namespace onednn
}  // namespace nle::ops::cpu
