"""Sampling against transformers' warpers. The two sample with different random
generators, so their tokens differ; what must agree is the distribution each token is
drawn from. For every token nlpengine samples, transformers' processors and warpers
(MinNewTokensLengthLogitsProcessor, TemperatureLogitsWarper, TopKLogitsWarper,
TopPLogitsWarper, in generate()'s order) over transformers' own logits for the same
prefix must keep that token, and the score nlpengine reports for a row (the sum of its
tokens' log-probabilities under the filtered distributions) must be the sum that
transformers' filtered distributions give: both hold only if the kept sets are the
same at every step. Vocabularies of 2,000, random weights of two scales (flat logits,
where top-p keeps most tokens, and peaked ones)."""

from __future__ import annotations

import nlpengine
import numpy as np
import pytest
import torch
from seq2seq_models import DECISIVE_STD, SEQ2SEQ_CONFIGS, save_seq2seq

TOLERANCE = 1e-4  # on a row's summed log-probabilities (float32 logits)
VOCAB = 2000
NEW_TOKENS = 8

# Exactly NEW_TOKENS new tokens, and none of the processors the warpers are not checked
# with (a directory's forced tokens, n-gram blocking, repetition penalty).
FIXED_LENGTH = dict(
    min_new_tokens=NEW_TOKENS,
    max_new_tokens=NEW_TOKENS,
    forced_bos_token_id=None,
    forced_eos_token_id=None,
    no_repeat_ngram_size=0,
    repetition_penalty=1.0,
)

CASES = {
    "top_k": dict(top_k=7, top_p=1.0, temperature=1.0),
    "top_p": dict(top_k=0, top_p=0.6, temperature=1.0),
    "top_k+top_p+temperature": dict(top_k=40, top_p=0.9, temperature=0.7),
    "temperature": dict(top_k=0, top_p=1.0, temperature=1.5),
}


@pytest.fixture(scope="module", params=[("bart", 0.2), ("bart", DECISIVE_STD), ("t5", 0.2)])
def pair(request, tmp_path_factory):
    arch, std = request.param
    path = tmp_path_factory.mktemp(f"{arch}-{std}")
    config = dict(SEQ2SEQ_CONFIGS[arch], vocab_size=VOCAB)
    reference = save_seq2seq(path, config, 41, std=std)
    return reference, nlpengine.load(path, threads=2)


def _warped_log_probs(reference, ids, mask, sequences, options):
    """transformers' log-probabilities of each step's filtered distribution, for the
    decoder prefixes of `sequences`: shape (rows, steps, vocab)."""
    from transformers import (
        LogitsProcessorList,
        MinNewTokensLengthLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList(
        [MinNewTokensLengthLogitsProcessor(1, NEW_TOKENS, reference.config.eos_token_id)]
    )
    if options["temperature"] != 1.0:
        processors.append(TemperatureLogitsWarper(options["temperature"]))
    if options["top_k"] > 0:
        processors.append(TopKLogitsWarper(options["top_k"]))
    if options["top_p"] < 1.0:
        processors.append(TopPLogitsWarper(options["top_p"]))
    prefixes = torch.from_numpy(sequences)
    with torch.no_grad():
        logits = reference(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            decoder_input_ids=prefixes[:, :-1],
        ).logits
        steps = [
            torch.log_softmax(processors(prefixes[:, : t + 1], logits[:, t].clone()), dim=-1)
            for t in range(logits.shape[1])
        ]
    return torch.stack(steps, dim=1).numpy()


@pytest.mark.parametrize("case", sorted(CASES))
def test_sampled_tokens_come_from_transformers_filtered_distributions(pair, case):
    reference, model = pair
    options = CASES[case]
    rng = np.random.default_rng(6)
    ids = rng.integers(3, VOCAB - 2, size=(3, 10)).astype(np.int64)
    mask = np.ones_like(ids)
    kept_sizes = []
    for seed in range(3):
        out = model.generate(
            ids,
            mask,
            do_sample=True,
            seed=seed,
            num_beams=1,
            **FIXED_LENGTH,
            **options,
        )
        assert out.sequences.shape == (3, NEW_TOKENS + 1)
        log_probs = _warped_log_probs(reference, ids, mask, out.sequences, options)
        chosen = np.take_along_axis(log_probs, out.sequences[:, 1:, None], axis=2)[..., 0]
        assert np.isfinite(chosen).all(), (
            f"a sampled token that transformers filters out ({chosen})"
        )
        np.testing.assert_allclose(out.scores, chosen.sum(axis=1), atol=TOLERANCE, rtol=0)
        kept_sizes.append(np.isfinite(log_probs).sum(axis=2))
    kept = np.concatenate(kept_sizes)
    if options["top_k"] > 0:
        assert kept.max() <= options["top_k"]
    if options["top_p"] < 1.0 or options["top_k"] > 0:
        assert kept.min() < VOCAB  # the filter did remove tokens


@pytest.mark.parametrize("case", ["top_k", "top_k+top_p+temperature"])
def test_beam_sampling_keeps_to_transformers_filtered_distributions(pair, case):
    """Beam search with sampling (transformers' beam sample): each source's continuations
    are drawn without replacement from its beams' filtered distributions, so every token
    of every returned sequence must be one transformers' warpers keep for its prefix; the
    same seed gives the same sequences."""
    reference, model = pair
    options = dict(
        CASES[case],
        do_sample=True,
        num_beams=3,
        num_return_sequences=2,
        length_penalty=1.0,
        **FIXED_LENGTH,
    )
    rng = np.random.default_rng(7)
    ids = rng.integers(3, VOCAB - 2, size=(2, 10)).astype(np.int64)
    mask = np.ones_like(ids)
    out = model.generate(ids, mask, seed=3, **options)
    assert out.sequences.shape == (4, NEW_TOKENS + 1)
    log_probs = _warped_log_probs(
        reference, np.repeat(ids, 2, axis=0), np.repeat(mask, 2, axis=0), out.sequences, CASES[case]
    )
    chosen = np.take_along_axis(log_probs, out.sequences[:, 1:, None], axis=2)[..., 0]
    assert np.isfinite(chosen).all(), f"a token that transformers filters out ({chosen})"
    again = model.generate(ids, mask, seed=3, **options)
    np.testing.assert_array_equal(again.sequences, out.sequences)
