// The decoding strategies of transformers' generate(), over a DecoderSession.
#pragma once

#include "generate/decoder_session.h"
#include "nlpengine/generation.h"

namespace nle {

// Greedy search, or multinomial sampling with do_sample (transformers' _sample).
// Rows 0..num_rows-1 decode independently; a row stops costing work once it ends.
SearchOutput sampling_search(DecoderSession& session, int64_t num_rows, const GenerationOptions& options);

// Beam search (transformers' _beam_search) for num_sources sources; source s owns
// cache rows s * num_beams .. s * num_beams + num_beams - 1. Returns
// num_return_sequences rows per source, best first; a source whose result can
// no longer change stops costing work.
SearchOutput beam_search(DecoderSession& session, int64_t num_sources, const GenerationOptions& options);

}  // namespace nle
