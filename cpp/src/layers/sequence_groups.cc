#include "layers/sequence_groups.h"

#include <algorithm>
#include <exception>
#include <mutex>
#include <string>

#include "core/parallel.h"
#include "core/scratch_buffer.h"
#include "nlpengine/errors.h"

namespace nle {

std::vector<size_t> sequence_groups(const std::vector<int64_t>& seq_offsets, int64_t min_rows) {
  std::vector<size_t> bounds{0};
  const size_t sequences = seq_offsets.empty() ? 0 : seq_offsets.size() - 1;
  for (size_t s = 1; s <= sequences; ++s)
    if (seq_offsets[s] - seq_offsets[bounds.back()] >= min_rows || s == sequences) bounds.push_back(s);
  return bounds;
}

std::vector<size_t> busy_sequence_groups(const std::vector<int64_t>& seq_offsets, int64_t min_rows,
                                         int64_t threads) {
  std::vector<size_t> bounds = sequence_groups(seq_offsets, min_rows);
  if (bounds.size() <= 2 || threads <= 1 || seq_offsets.back() > threads * kWholeBatchRows) return bounds;
  std::vector<int64_t> busy(static_cast<size_t>(threads), 0);  // tokens each thread has run
  for (size_t g = 0; g + 1 < bounds.size(); ++g)
    *std::min_element(busy.begin(), busy.end()) += seq_offsets[bounds[g + 1]] - seq_offsets[bounds[g]];
  const int64_t longest = *std::max_element(busy.begin(), busy.end());
  const double share = static_cast<double>(seq_offsets.back()) / static_cast<double>(threads * longest);
  if (share >= kGroupsBusyShare) return bounds;
  return {0, seq_offsets.size() - 1};
}

std::vector<size_t> balanced_sequence_groups(const std::vector<int64_t>& seq_offsets, int64_t parts) {
  std::vector<size_t> bounds{0};
  const size_t sequences = seq_offsets.empty() ? 0 : seq_offsets.size() - 1;
  if (sequences == 0) return bounds;
  const int64_t total = seq_offsets.back();
  for (int64_t i = 1; i < parts; ++i) {
    const int64_t target = total * i / parts;
    // The first boundary at or past the target, or the one before it if that is nearer.
    size_t s = bounds.back() + 1;
    while (s < sequences && seq_offsets[s] < target) ++s;
    if (s > bounds.back() + 1 && target - seq_offsets[s - 1] < seq_offsets[s] - target) --s;
    if (s >= sequences) break;
    bounds.push_back(s);
  }
  bounds.push_back(sequences);
  return bounds;
}

Tensor row_view(Tensor& t, int64_t begin, int64_t end) {
  const int64_t cols = t.dim(1);
  const size_t row_bytes = static_cast<size_t>(cols) * dtype_size(t.dtype());
  return Tensor::view(t.dtype(), {end - begin, cols}, static_cast<uint8_t*>(t.raw_data()) + begin * row_bytes,
                      t.owner());
}

Tensor group_scratch(int slot, const Tensor& like, int64_t rows) {
  thread_local ScratchBuffer<uint8_t> slots[kGroupScratchSlots];
  if (slot < 0 || slot >= kGroupScratchSlots) throw Error("group_scratch: no slot " + std::to_string(slot));
  const int64_t cols = like.dim(1);
  void* data = slots[slot].get(static_cast<size_t>(rows * cols) * dtype_size(like.dtype()));
  return Tensor::view(like.dtype(), {rows, cols}, data, nullptr);
}

void for_each_sequence_group(const std::vector<int64_t>& seq_offsets, const std::vector<size_t>& groups,
                             const std::function<void(int64_t, int64_t, const std::vector<int64_t>&)>& run) {
  const int64_t count = static_cast<int64_t>(groups.size()) - 1;
  std::exception_ptr failure;
  std::mutex failure_mutex;
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t g = 0; g < count; ++g) {
    try {
      // MKL called from the team's first thread would otherwise keep the caller's thread
      // count and split its work over a nested team that never forms: MKL's int8 product
      // then leaves part of its output unwritten (seen on an AMD EPYC host). One thread
      // per group, MKL included, for the group's run.
      const ThreadScope one_thread(1);
      const size_t first = groups[g], last = groups[g + 1];
      const int64_t begin = seq_offsets[first];
      std::vector<int64_t> offsets(seq_offsets.begin() + static_cast<int64_t>(first),
                                   seq_offsets.begin() + static_cast<int64_t>(last) + 1);
      for (int64_t& o : offsets) o -= begin;
      run(begin, seq_offsets[last], offsets);
    } catch (...) {
      std::lock_guard<std::mutex> lock(failure_mutex);
      if (!failure) failure = std::current_exception();
    }
  }
  if (failure) std::rethrow_exception(failure);
}

}  // namespace nle
