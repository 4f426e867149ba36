// Memory for a model's packed weights: read whole at every call and kept for the model's
// lifetime, it goes on transparent huge pages where the kernel offers them.
//
// A decoding step streams every weight from memory once. With 4 KB pages that is a TLB
// miss every 4 KB, and under a hypervisor each miss walks two page tables: on the 2-vCPU
// AMD EPYC (Zen 4, KVM) host, bart-base generating from one source ran at 70-106 tokens/s
// in float32 on 4 KB pages and 120-131 on 2 MB pages (int8 230-320 and 310-410), in
// alternating runs.
#pragma once

#include <cstddef>
#include <memory>

namespace nle {

// `bytes` bytes, 64-byte aligned, freed with the last owner; nullptr when out of memory.
// From 4 MB on, the buffer starts on a 2 MB boundary and is advised to the kernel as huge
// page memory (madvise MADV_HUGEPAGE; whether it gets huge pages is the kernel's choice:
// /sys/kernel/mm/transparent_hugepage). NLPENGINE_HUGE_PAGES=0 turns this off.
std::shared_ptr<void> allocate_weight_memory(size_t bytes);

// Whether allocate_weight_memory advises huge pages (NLPENGINE_HUGE_PAGES is not 0).
bool weight_memory_on_huge_pages();

}  // namespace nle
