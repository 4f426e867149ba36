// Scratch space a kernel keeps between calls (thread_local, one per thread).
//
// A std::vector resized up value-initialises every element it adds, even where its
// capacity already holds them: scratch resized for one product's input and then for a
// larger one's was zero-filled again on every call (on all-MiniLM-L6-v2 at batch 1, 1-5%
// of a call went to memset). This buffer only grows, 64-byte aligned, and leaves its
// contents as they are: callers write what they read.
#pragma once

#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>

#include "nlpengine/errors.h"

namespace nle {

template <class T>
class ScratchBuffer {
  static_assert(std::is_trivially_copyable_v<T> && std::is_trivially_destructible_v<T>,
                "scratch holds plain values only");

 public:
  // Room for n values, uninitialised (what an earlier call left there, or nothing); grows
  // to the largest request so far and keeps it. Earlier pointers are invalid after a call
  // that grows it.
  T* get(size_t n) {
    if (n > capacity_) {
      const size_t bytes = (n * sizeof(T) + 63) / 64 * 64;
      void* p = std::aligned_alloc(64, bytes);
      if (!p) throw Error("out of memory for " + std::to_string(bytes) + " bytes of scratch");
      data_.reset(static_cast<T*>(p));
      capacity_ = n;
    }
    return data_.get();
  }

 private:
  struct Free {
    void operator()(T* p) const { std::free(p); }
  };
  std::unique_ptr<T, Free> data_;
  size_t capacity_ = 0;
};

}  // namespace nle
