// Running a packed batch of sequences in groups of whole sequences, one group per
// thread at a time (int8 and bf16 layers).
//
// With int8 products a layer spends as long in the short passes around each product
// (quantize, rescale, activation, softmax, norms) as in the products themselves. Run
// over a whole batch, every pass streams the batch's activations through memory and
// ends in a barrier. Run over a group of a few sequences on one thread, the group's
// activations stay in that core's L2 cache through the whole layer and no pass waits
// for the other threads. The group's passing activations (queries, keys and values,
// context, projections, intermediate) live in its thread's scratch (group_scratch), the
// same memory group after group: in slices of the batch's buffers each group wrote cold
// memory (MiniLM int8 on a Sapphire Rapids, 2 threads, alternating runs, sentences/s:
// batches of 32 of 8-128 tokens 910 -> 986, of 6-40 tokens 2,833 -> 2,984, of 256-512
// tokens 115 -> 130; BERT-base sizes 174 -> 190; int8-mixed 732 -> 765; peak RSS 186 ->
// 152 MB). The GEMM library's small products are as fast as its large ones only with
// pre-packed (int8) weights; float32 measured slower this way.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "nlpengine/tensor.h"

namespace nle {

// The smallest group, in tokens: large enough for efficient products, small enough
// that a group's (rows, intermediate) activations fit in L2.
constexpr int64_t kSequenceGroupRows = 64;

// Layers with a bf16 product (bf16, and int8-mixed's second feed-forward product where the
// CPU multiplies bf16: int8-mixed 734 -> 817 sentences/s, 6-40 tokens 2,205 -> 2,533,
// BERT-base 124 -> 147, 256-512 tokens 110 -> 105) of at least threads * kBf16GroupMinRows
// tokens run in groups of about
// kBf16GroupRows tokens or fewer, as many groups for each thread (balanced_sequence_groups):
// whole sequences cut where minimum-size groups would leave one thread the last group
// alone. MiniLM bf16 on a Sapphire Rapids, 2 threads, alternating runs, sentences/s
// against the whole batch on both threads: batches of 32 sentences of 8-128 tokens 835 ->
// 940, of 6-40 tokens 2,425 -> 2,810, of 256-512 tokens 107 -> 115; of 8 sentences 744 ->
// 836, of 3 sentences 562 -> 644; BERT-base sizes 137 -> 142. Groups of 256 rows were
// slower than groups of 1,024 (each group reads every weight: a bf16 layer's are 3.5 MB),
// and groups of at least 768 rows, 3 to a batch, left a thread idle for a third of it.
constexpr int64_t kBf16GroupRows = 1024;
constexpr int64_t kBf16GroupMinRows = 128;

// Sequence indices where groups start, then the sequence count: each group holds
// consecutive sequences and at least min_rows tokens (the last may hold fewer).
// seq_offsets: the batch's packed offsets, 0 first and the token count last.
std::vector<size_t> sequence_groups(const std::vector<int64_t>& seq_offsets, int64_t min_rows);

// sequence_groups(seq_offsets, min_rows) where for_each_sequence_group would keep each of
// `threads` threads busy for at least kGroupsBusyShare of the layer (its dynamic schedule
// simulated: each group, in order, to the thread that comes free first), else one group of
// the whole batch, whose operations each run on every thread. A batch of a few sequences
// makes a few groups of unequal length, and while the last runs the other threads wait:
// MiniLM int8, 2 threads, AVX2-only AMD EPYC, sentences of 8-128 tokens, sentences/s
// grouped -> whole: batches of 2 36.8 -> 41.8, of 4 37.1 -> 42.6, of 8 40.8 -> 42.9, of 32
// 44.0 -> 42.9 (there about 20 groups keep both threads busy, and grouping wins). Only
// batches of up to kWholeBatchRows tokens a thread run whole: a whole batch's passing
// activations are the batch's (a group's stay in its thread's scratch), and with batches
// of 32 a whole batch now and then took MiniLM int8's peak RSS from 93 to 120 MB.
constexpr double kGroupsBusyShare = 0.95;
constexpr int64_t kWholeBatchRows = 512;
std::vector<size_t> busy_sequence_groups(const std::vector<int64_t>& seq_offsets, int64_t min_rows,
                                         int64_t threads);

// Sequence indices where `parts` groups of consecutive whole sequences start, then the
// sequence count: each cut at the sequence boundary nearest to an equal share of the
// tokens (fewer groups where there are fewer sequences; none empty).
std::vector<size_t> balanced_sequence_groups(const std::vector<int64_t>& seq_offsets, int64_t parts);

// Rows [begin, end) of a 2-D F32 tensor, sharing its storage.
Tensor row_view(Tensor& t, int64_t begin, int64_t end);

// A (rows, like's width) tensor of like's type in this thread's scratch slot `slot` (0 to
// kGroupScratchSlots - 1), kept between calls: a group's passing activations, written and
// read group after group in the same memory, stay in the core's cache. Valid until the
// slot's next use on this thread.
constexpr int kGroupScratchSlots = 4;
Tensor group_scratch(int slot, const Tensor& like, int64_t rows);

// Calls run(begin row, end row, offsets rebased to 0) for each group, groups spread over
// the threads; the operations run() calls stay on its thread (each group runs under a
// one-thread ThreadScope, so nested parallel regions and MKL are serial). The first
// exception is rethrown after all groups end.
void for_each_sequence_group(const std::vector<int64_t>& seq_offsets, const std::vector<size_t>& groups,
                             const std::function<void(int64_t, int64_t, const std::vector<int64_t>&)>& run);

}  // namespace nle
