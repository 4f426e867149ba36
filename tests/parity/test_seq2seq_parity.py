"""Encoder-decoder runtime against transformers: forward logits (tolerance 1e-4) and
generate() token for token (greedy and beam search) on tiny random models of every
supported architecture, with batches of sources of different lengths."""

from __future__ import annotations

import nlpengine
import numpy as np
import pytest
import torch
from seq2seq_models import DECISIVE_STD, SEQ2SEQ_CONFIGS, SEQ2SEQ_VOCAB, save_seq2seq

TOLERANCE = 1e-4
ARCHS = sorted(SEQ2SEQ_CONFIGS)


@pytest.fixture(scope="module", params=ARCHS)
def pair(request, tmp_path_factory):
    name = request.param
    path = tmp_path_factory.mktemp(name.replace(".", "_"))
    reference = save_seq2seq(path, SEQ2SEQ_CONFIGS[name], ARCHS.index(name), std=DECISIVE_STD)
    return name, reference, nlpengine.load(path, threads=2)


def _sources(lengths, pad_id, seed=0):
    """Right-padded random sources of the given lengths (ids avoid the special ids)."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    mask = np.zeros_like(ids)
    for i, n in enumerate(lengths):
        ids[i, :n] = rng.integers(3, SEQ2SEQ_VOCAB - 2, size=n)
        mask[i, :n] = 1
    return ids, mask


def _reference_logits(reference, ids, mask, decoder):
    """transformers' LM logits for explicit decoder inputs, as a numpy array."""
    with torch.no_grad():
        return reference(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            decoder_input_ids=torch.from_numpy(decoder),
        ).logits.numpy()


def _pad_id(reference):
    return reference.config.pad_token_id


def test_loads_as_seq2seq(pair):
    name, reference, model = pair
    assert isinstance(model, nlpengine.Seq2SeqModel)
    assert model.config["model_type"] == reference.config.model_type


def test_forward_logits_match(pair):
    name, reference, model = pair
    ids, mask = _sources([7, 13, 3], _pad_id(reference), seed=1)
    rng = np.random.default_rng(2)
    decoder = rng.integers(3, SEQ2SEQ_VOCAB - 2, size=(3, 6)).astype(np.int64)
    decoder[:, 0] = reference.config.decoder_start_token_id
    expected = _reference_logits(reference, ids, mask, decoder)
    actual = model.forward(ids, mask, decoder)
    assert actual.shape == expected.shape
    np.testing.assert_allclose(actual, expected, atol=TOLERANCE, rtol=0)


GENERATION_CASES = {
    "greedy": dict(num_beams=1, min_new_tokens=4, max_new_tokens=12),
    "beam": dict(
        num_beams=4, length_penalty=1.3, no_repeat_ngram_size=2, min_new_tokens=3, max_new_tokens=10
    ),
    "beam-early": dict(num_beams=3, early_stopping=True, num_return_sequences=2, max_new_tokens=9),
    "beam-repetition": dict(
        num_beams=2, repetition_penalty=1.5, length_penalty=0.6, min_new_tokens=2, max_new_tokens=8
    ),
}


@pytest.mark.parametrize("case", sorted(GENERATION_CASES))
def test_generate_matches_transformers(pair, case):
    name, reference, model = pair
    options = GENERATION_CASES[case]
    ids, mask = _sources([9, 4, 15, 6], _pad_id(reference), seed=3)
    with torch.no_grad():
        expected = reference.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            **options,
        )
    actual = model.generate(ids, mask, **options)
    np.testing.assert_array_equal(actual.sequences, expected.sequences.numpy())
    if options["num_beams"] > 1:
        np.testing.assert_allclose(
            actual.scores, expected.sequences_scores.numpy(), atol=TOLERANCE, rtol=0
        )


@pytest.mark.parametrize("case", ["greedy", "beam", "beam-early"])
def test_generate_one_source_matches_transformers(pair, case):
    """A single source (a service's request): its decoding steps are products of 1 to 4
    rows, which read the weight in a kernel of their own where the CPU has one
    (ops/cpu/gemv_f32_blocked.h)."""
    name, reference, model = pair
    options = GENERATION_CASES[case]
    ids, mask = _sources([11], _pad_id(reference), seed=5)
    with torch.no_grad():
        expected = reference.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            do_sample=False,
            output_scores=True,
            return_dict_in_generate=True,
            **options,
        )
    actual = model.generate(ids, mask, **options)
    np.testing.assert_array_equal(actual.sequences, expected.sequences.numpy())
    if options["num_beams"] > 1:
        np.testing.assert_allclose(
            actual.scores, expected.sequences_scores.numpy(), atol=TOLERANCE, rtol=0
        )


def test_sampling_is_repeatable(pair):
    name, reference, model = pair
    ids, mask = _sources([5, 11], _pad_id(reference), seed=4)
    options = dict(
        do_sample=True,
        top_k=20,
        top_p=0.9,
        temperature=0.8,
        seed=7,
        max_new_tokens=10,
        num_return_sequences=3,
    )
    first = model.generate(ids, mask, **options)
    second = model.generate(ids, mask, **options)
    np.testing.assert_array_equal(first.sequences, second.sequences)
    assert first.sequences.shape[0] == 6
    other = model.generate(ids, mask, **dict(options, seed=8))
    assert not np.array_equal(first.sequences, other.sequences)


def test_defaults_come_from_generation_config(tmp_path):
    """With no options, both sides use generation_config.json (beam search with a
    forced BOS, n-gram blocking and early_stopping="never" here)."""
    from transformers import GenerationConfig

    reference = save_seq2seq(tmp_path, SEQ2SEQ_CONFIGS["bart"], 11, std=DECISIVE_STD)
    GenerationConfig(
        num_beams=3,
        no_repeat_ngram_size=3,
        early_stopping="never",
        length_penalty=2.0,
        max_length=14,
        min_length=6,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        decoder_start_token_id=2,
        eos_token_id=2,
        pad_token_id=1,
        bos_token_id=0,
    ).save_pretrained(tmp_path)
    reference.generation_config = GenerationConfig.from_pretrained(tmp_path)
    model = nlpengine.load(tmp_path)
    assert model.generation_config["num_beams"] == 3
    assert model.generation_config["early_stopping"] == "never"
    ids, mask = _sources([8, 12, 5], pad_id=1, seed=12)
    with torch.no_grad():
        expected = reference.generate(
            input_ids=torch.from_numpy(ids), attention_mask=torch.from_numpy(mask)
        )
    actual = model.generate(ids, mask)
    np.testing.assert_array_equal(actual.sequences, expected.numpy())
    assert (actual.sequences[:, 1] == 0).all()  # the forced BOS


@pytest.mark.parametrize(
    "switched_off",
    [
        {"forced_eos_token_id": None},
        {"forced_bos_token_id": None, "no_repeat_ngram_size": None},
        {"repetition_penalty": None, "min_length": None},
        {"max_new_tokens": None},
    ],
    ids=lambda options: "+".join(options),
)
def test_none_switches_a_default_off(tmp_path, switched_off):
    """An option given as None is switched off, as transformers' generate() does with a
    None (not replaced by the generation_config.json value): a real bart-base or Marian
    directory has a forced end token, which a run of exactly N new tokens must turn off."""
    from transformers import GenerationConfig

    reference = save_seq2seq(tmp_path, SEQ2SEQ_CONFIGS["bart"], 17, std=DECISIVE_STD)
    GenerationConfig(
        num_beams=2,
        no_repeat_ngram_size=2,
        repetition_penalty=1.8,
        max_length=9,
        max_new_tokens=6,
        min_length=5,
        forced_bos_token_id=0,
        forced_eos_token_id=2,
        decoder_start_token_id=2,
        eos_token_id=2,
        pad_token_id=1,
        bos_token_id=0,
    ).save_pretrained(tmp_path)
    reference.generation_config = GenerationConfig.from_pretrained(tmp_path)
    model = nlpengine.load(tmp_path)
    ids, mask = _sources([8, 12, 5], pad_id=1, seed=13)

    def both(**options):
        with torch.no_grad():
            expected = reference.generate(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                output_scores=True,
                return_dict_in_generate=True,
                **options,
            )
        actual = model.generate(ids, mask, **options)
        np.testing.assert_array_equal(actual.sequences, expected.sequences.numpy())
        np.testing.assert_allclose(
            actual.scores, expected.sequences_scores.numpy(), atol=TOLERANCE, rtol=0
        )
        return actual.sequences

    defaults = both()
    switched = both(**switched_off)
    assert not np.array_equal(switched, defaults)  # the option mattered here


def _banned_options(sequences: np.ndarray, special: set[int]) -> dict:
    """bad_words_ids, suppress_tokens and begin_suppress_tokens that each hit tokens the
    search chose without them: one-token bad words, a two-token bad word (a pair that
    occurred), a suppressed token and the first generated token of the first row."""
    generated = [[int(t) for t in row[1:] if int(t) not in special] for row in sequences]
    counts: dict[int, int] = {}
    for row in generated:
        for t in row:
            counts[t] = counts.get(t, 0) + 1
    by_count = sorted(counts, key=lambda t: (-counts[t], t))
    by_count += [t for t in range(3, 10) if t not in counts and t not in special]
    pairs = [
        [a, b]
        for row in generated
        for a, b in zip(row, row[1:], strict=False)
        if by_count[0] not in (a, b)
    ]
    pair = pairs[0] if pairs else [by_count[1], by_count[2]]
    return dict(
        bad_words_ids=[[by_count[0]], pair, [by_count[0], by_count[1], by_count[2]]],
        suppress_tokens=[by_count[1]],
        begin_suppress_tokens=[generated[0][0]],
    )


@pytest.mark.parametrize("case", ["greedy", "beam"])
def test_bad_words_and_suppressed_tokens_match_transformers(pair, case):
    """bad_words_ids (one- and several-token), suppress_tokens, begin_suppress_tokens and
    renormalize_logits, given as options: transformers' tokens, and its beam scores,
    which renormalize_logits changes where tokens were removed."""
    name, reference, model = pair
    base = dict(GENERATION_CASES[case])
    ids, mask = _sources([9, 4, 15, 6], _pad_id(reference), seed=3)
    config = reference.generation_config
    special = {config.decoder_start_token_id, config.pad_token_id, reference.config.eos_token_id}
    before = model.generate(ids, mask, **base).sequences
    for renormalize in (False, True):
        options = dict(base, renormalize_logits=renormalize, **_banned_options(before, special))
        with torch.no_grad():
            expected = reference.generate(
                input_ids=torch.from_numpy(ids),
                attention_mask=torch.from_numpy(mask),
                do_sample=False,
                output_scores=True,
                return_dict_in_generate=True,
                **options,
            )
        actual = model.generate(ids, mask, **options)
        np.testing.assert_array_equal(actual.sequences, expected.sequences.numpy())
        if base["num_beams"] > 1:
            np.testing.assert_allclose(
                actual.scores, expected.sequences_scores.numpy(), atol=TOLERANCE, rtol=0
            )
        assert not np.array_equal(actual.sequences, before)
        banned = options["suppress_tokens"][0], options["bad_words_ids"][0][0]
        assert not np.isin(actual.sequences[:, 1:], banned).any()


def test_marian_generation_config_bans_its_pad_token(tmp_path):
    """A converted Marian model's generation_config.json: bad_words_ids [[pad]] and
    renormalize_logits, read from the file as transformers reads them; the pad token,
    made the likeliest by its bias, is never generated."""
    from transformers import GenerationConfig

    config = SEQ2SEQ_CONFIGS["marian"]
    reference = save_seq2seq(tmp_path, config, 23, std=DECISIVE_STD)
    pad = config["pad_token_id"]
    with torch.no_grad():
        reference.final_logits_bias[0, pad] = 30.0  # pad would win every step
    reference.save_pretrained(tmp_path)
    GenerationConfig(
        bad_words_ids=[[pad]],
        renormalize_logits=True,
        num_beams=3,
        max_length=12,
        decoder_start_token_id=pad,
        eos_token_id=config["eos_token_id"],
        forced_eos_token_id=config["eos_token_id"],
        pad_token_id=pad,
    ).save_pretrained(tmp_path)
    reference.generation_config = GenerationConfig.from_pretrained(tmp_path)
    model = nlpengine.load(tmp_path)
    assert model.generation_config["bad_words_ids"] == [[pad]]
    assert model.generation_config["renormalize_logits"] is True
    ids, mask = _sources([7, 10, 4], pad_id=pad, seed=21)
    with torch.no_grad():
        expected = reference.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            output_scores=True,
            return_dict_in_generate=True,
        )
    actual = model.generate(ids, mask)
    np.testing.assert_array_equal(actual.sequences, expected.sequences.numpy())
    np.testing.assert_allclose(
        actual.scores, expected.sequences_scores.numpy(), atol=TOLERANCE, rtol=0
    )
    finished = actual.sequences[:, 1:]
    assert not (finished[:, : finished.shape[1] - 1] == pad).all(axis=1).any()


def test_marian_with_its_own_decoder_vocabulary(tmp_path):
    """share_encoder_decoder_embeddings=False: separate decoder embeddings and a
    decoder_vocab_size-wide LM head."""
    config = dict(
        SEQ2SEQ_CONFIGS["marian"],
        share_encoder_decoder_embeddings=False,
        decoder_vocab_size=70,
        pad_token_id=69,
        decoder_start_token_id=69,
    )
    reference = save_seq2seq(tmp_path, config, 5, std=DECISIVE_STD)
    model = nlpengine.load(tmp_path)
    assert model.config["decoder_vocab_size"] == 70
    ids, mask = _sources([6, 10], pad_id=69, seed=13)
    decoder = np.array([[69, 5, 6, 7], [69, 8, 9, 10]], dtype=np.int64)
    expected = _reference_logits(reference, ids, mask, decoder)
    with torch.no_grad():
        generated = reference.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            num_beams=2,
            max_new_tokens=6,
            min_new_tokens=3,
        ).numpy()
    np.testing.assert_allclose(model.forward(ids, mask, decoder), expected, atol=TOLERANCE, rtol=0)
    actual = model.generate(ids, mask, num_beams=2, max_new_tokens=6, min_new_tokens=3)
    np.testing.assert_array_equal(actual.sequences, generated)


#: Heads of 32 and 64 (bart-base's and t5-small's are 64 wide) over d_model 64.
WIDE_HEADS = {
    "bart": dict(
        d_model=64,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        max_position_embeddings=256,
    ),
    "marian": dict(
        d_model=64,
        encoder_attention_heads=2,
        decoder_attention_heads=1,
        max_position_embeddings=256,
    ),
    "t5": dict(d_model=64, d_kv=32, num_heads=2),
}


@pytest.mark.parametrize("name", sorted(WIDE_HEADS))
def test_long_sources_with_wide_heads_match_transformers(tmp_path, name):
    """Sources of up to 200 tokens, padded in one batch with short ones, in heads of 32 and
    64: the attention kernels' blocked paths past 64 and 160 keys, and a decoding step's
    cross-attention over many source rows (the cases above keep sources under 16 tokens in
    heads of 8 or 12). Forward logits within TOLERANCE (measured: 5e-6 to 1.4e-5 under
    oneDNN, MKL and the AVX2 build) and greedy tokens equal (the smallest gap between a
    step's two best logits here is 1.8e-3).
    T5 v1.1 is left out: with heads this wide its random model is ill-conditioned
    (transformers' own float32 logits are 5.5e-3 from its float64 ones, as nlpengine's)."""
    reference = save_seq2seq(tmp_path, {**SEQ2SEQ_CONFIGS[name], **WIDE_HEADS[name]}, 7)
    model = nlpengine.load(tmp_path, threads=2)
    ids, mask = _sources([200, 37, 161, 5], _pad_id(reference), seed=31)
    rng = np.random.default_rng(32)
    decoder = rng.integers(3, SEQ2SEQ_VOCAB - 2, size=(4, 6)).astype(np.int64)
    decoder[:, 0] = reference.config.decoder_start_token_id
    np.testing.assert_allclose(
        model.forward(ids, mask, decoder),
        _reference_logits(reference, ids, mask, decoder),
        atol=TOLERANCE,
        rtol=0,
    )
    options = dict(num_beams=1, min_new_tokens=12, max_new_tokens=12)
    with torch.no_grad():
        expected = reference.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            do_sample=False,
            **options,
        )
    np.testing.assert_array_equal(model.generate(ids, mask, **options).sequences, expected.numpy())


def test_marian_positions_past_the_precomputed_table(tmp_path):
    """Marian's sinusoidal positions are computed at load for the first 4,096 positions
    only, and per token past them, so a max_position_embeddings of any size loads in the
    same memory and time: a source of 4,200 tokens against transformers (whose table holds
    all 5,000)."""
    config = {**SEQ2SEQ_CONFIGS["marian"], "max_position_embeddings": 5000}
    reference = save_seq2seq(tmp_path, config, 3)
    model = nlpengine.load(tmp_path, threads=2)
    ids, mask = _sources([4200, 9], _pad_id(reference), seed=5)
    decoder = np.full((2, 3), reference.config.decoder_start_token_id, dtype=np.int64)
    decoder[:, 1:] = [[5, 6], [7, 8]]
    np.testing.assert_allclose(
        model.forward(ids, mask, decoder),
        _reference_logits(reference, ids, mask, decoder),
        atol=TOLERANCE,
        rtol=0,
    )


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("name", ARCHS)
def test_half_precision_checkpoint_matches_transformers(tmp_path, name, dtype):
    """A checkpoint saved in F16 or BF16 computes like transformers on the same rounded
    weights in float32: forward logits within TOLERANCE and greedy tokens equal. Its token
    tables stay as stored and are widened row by row as they are looked up."""
    reference = save_seq2seq(tmp_path / "f32", SEQ2SEQ_CONFIGS[name], 11, std=DECISIVE_STD)
    # Marian's sinusoidal positions are computed, not loaded (by nlpengine, and by
    # transformers when it loads a checkpoint): the reference keeps them unrounded.
    positions = {
        f"{module_name}.weight": module.weight.detach().clone()
        for module_name, module in reference.named_modules()
        if "Sinusoidal" in type(module).__name__
    }
    reference.to(getattr(torch, dtype)).save_pretrained(tmp_path / dtype)
    reference.float()  # the same rounded weights, float32 arithmetic
    reference.load_state_dict(positions, strict=False)
    model = nlpengine.load(tmp_path / dtype, threads=2)
    ids, mask = _sources([9, 4, 14], _pad_id(reference), seed=12)
    rng = np.random.default_rng(13)
    decoder = rng.integers(3, SEQ2SEQ_VOCAB - 2, size=(3, 5)).astype(np.int64)
    decoder[:, 0] = reference.config.decoder_start_token_id
    np.testing.assert_allclose(
        model.forward(ids, mask, decoder),
        _reference_logits(reference, ids, mask, decoder),
        atol=TOLERANCE,
        rtol=0,
    )
    options = dict(num_beams=1, min_new_tokens=6, max_new_tokens=6)
    with torch.no_grad():
        expected = reference.generate(
            input_ids=torch.from_numpy(ids),
            attention_mask=torch.from_numpy(mask),
            do_sample=False,
            **options,
        )
    np.testing.assert_array_equal(model.generate(ids, mask, **options).sequences, expected.numpy())


def test_half_precision_table_read_from_its_file(tmp_path):
    """An F16 token table of over 8 MB (140,000 x 32) is read a row at a time from its
    file (ops::embedding) and widened: the same logits as transformers on the rounded
    weights, for ids across the whole table."""
    config = {**SEQ2SEQ_CONFIGS["bart"], "vocab_size": 140_000}
    reference = save_seq2seq(tmp_path / "f32", config, 14, std=DECISIVE_STD)
    reference.half().save_pretrained(tmp_path / "f16")
    reference.float()
    model = nlpengine.load(tmp_path / "f16", threads=2)
    rng = np.random.default_rng(15)
    ids = rng.integers(3, 140_000, size=(2, 11)).astype(np.int64)
    ids[0, 0] = 139_999
    mask = np.ones_like(ids)
    decoder = rng.integers(3, 140_000, size=(2, 4)).astype(np.int64)
    decoder[:, 0] = reference.config.decoder_start_token_id
    np.testing.assert_allclose(
        model.forward(ids, mask, decoder),
        _reference_logits(reference, ids, mask, decoder),
        atol=TOLERANCE,
        rtol=0,
    )
