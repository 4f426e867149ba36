"""QaPipeline and the runtime's span QA head against transformers.

Tiny seeded ``*ForQuestionAnswering`` models (bert, roberta, distilbert, electra) with real
tokenizers (WordPiece; byte-level BPE for RoBERTa) are saved in HF layout. transformers 5
has no question-answering pipeline any more, so the reference is transformers 4.x's
``QuestionAnsweringPipeline`` put together from transformers' own parts: its fast
tokenizer with the pipeline's arguments (``truncation="only_second"``, ``stride``,
``return_overflowing_tokens``), ``AutoModelForQuestionAnswering`` run on each window,
transformers' ``select_starts_ends`` (the pipeline's span scoring, still shipped in
``transformers.pipelines.document_question_answering``) and the pipeline's
post-processing (``2 * top_k + 10`` candidates per window, ``token_to_word`` /
``word_to_chars`` alignment, answers of equal text merged, the null answer, a stable sort).
Answers must agree in text and offsets, scores within 1e-4, with contexts long enough for
many windows; the runtime's start/end logits must agree with transformers' within 1e-4.
"""

from __future__ import annotations

import inspect

import nlpengine
import numpy as np
import pytest
import torch
from conftest import assert_close_unmasked
from conftest_qa import CONTEXTS, QUESTIONS, save_qa_model
from nlpengine_qa import QaPipeline

TOL = 1e-4
ARCHS = ["bert", "roberta", "distilbert", "electra"]
OPTIONS = [
    dict(top_k=1, max_seq_len=48, doc_stride=8, max_answer_len=4),
    dict(top_k=3, max_seq_len=64, doc_stride=16, handle_impossible_answer=True),
    dict(top_k=5, max_seq_len=128, doc_stride=32, max_answer_len=30),
]
#: Pairs with a non-empty context (transformers refuses an empty one); the long context is
#: asked twice, so the pipeline shares its tokenization.
PAIRS = [(q, c) for q, c in zip(QUESTIONS, CONTEXTS, strict=True) if c] + [
    (QUESTIONS[1], CONTEXTS[3])
]


@pytest.fixture(scope="module", params=ARCHS)
def qa_model(request, tmp_path_factory):
    from transformers import AutoModelForQuestionAnswering, AutoTokenizer

    arch = request.param
    model_dir = save_qa_model(tmp_path_factory.mktemp(f"qa-{arch}") / arch, arch, seed=5)
    model = AutoModelForQuestionAnswering.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    return arch, model_dir, model, tokenizer


def reference_answers(
    model,
    tokenizer,
    question,
    context,
    *,
    top_k=1,
    doc_stride,
    max_seq_len,
    max_answer_len=15,
    handle_impossible_answer=False,
):
    """transformers 4.x's question-answering pipeline on one pair (see the module doc):
    its answers and the number of windows."""
    from transformers.pipelines.document_question_answering import select_starts_ends

    encoded = tokenizer(
        question,
        context,
        truncation="only_second",
        max_length=max_seq_len,
        stride=doc_stride,
        return_overflowing_tokens=True,
        return_offsets_mapping=True,
        return_token_type_ids=True,
    )
    accepts_types = "token_type_ids" in inspect.signature(model.forward).parameters
    answers: list[dict] = []
    min_null_score = 1000000
    for span in range(len(encoded["input_ids"])):
        ids = encoded["input_ids"][span]
        p_mask = np.array([[seq != 1 for seq in encoded.sequence_ids(span)]], dtype=np.int64)
        p_mask[0, np.array(ids) == tokenizer.cls_token_id] = 0
        inputs = {"input_ids": torch.tensor([ids])}
        if accepts_types and "token_type_ids" in encoded:
            inputs["token_type_ids"] = torch.tensor([encoded["token_type_ids"][span]])
        with torch.no_grad():
            out = model(**inputs)
        starts, ends, scores, min_null_score = select_starts_ends(
            out.start_logits.numpy(),
            out.end_logits.numpy(),
            p_mask,
            np.ones_like(p_mask),
            min_null_score,
            2 * top_k + 10,
            handle_impossible_answer,
            max_answer_len,
        )
        enc = encoded.encodings[span]
        for s, e, score in zip(starts, ends, scores, strict=True):
            try:
                start = enc.word_to_chars(enc.token_to_word(s), sequence_index=1)[0]
                end = enc.word_to_chars(enc.token_to_word(e), sequence_index=1)[1]
            except Exception:
                start, end = enc.offsets[s][0], enc.offsets[e][1]
            target = context[start:end]
            same = [a for a in answers if a["text"].lower() == target.lower()]
            if same:
                same[0]["score"] += float(score)
            else:
                answers.append({"text": target, "start": start, "end": end, "score": float(score)})
    if handle_impossible_answer:
        answers.append({"text": "", "start": 0, "end": 0, "score": min_null_score})
    answers = sorted(answers, key=lambda a: a["score"], reverse=True)[:top_k]
    return answers, len(encoded["input_ids"])


def _rows(answers):
    return [(a["text"], a["start"], a["end"]) for a in answers]


@pytest.mark.parametrize("options", OPTIONS, ids=["top1-short", "top3-null", "top5-long"])
def test_answers_match_transformers(qa_model, options):
    arch, model_dir, model, tokenizer = qa_model
    pipe = QaPipeline(model_dir, threads=1, batch_size=4, **options)
    ours = pipe(PAIRS)
    worst = 0.0
    windows = 0
    for (question, context), got in zip(PAIRS, ours, strict=True):
        expected, n = reference_answers(model, tokenizer, question, context, **options)
        windows = max(windows, n)
        assert _rows(got) == _rows(expected), f"{arch} {options}: {question!r}"
        for a, b in zip(got, expected, strict=True):
            assert context[a["start"] : a["end"]] == a["text"]
            worst = max(worst, abs(a["score"] - b["score"]))
    print(f"{arch} {options}: max score diff {worst:.2e}, up to {windows} windows per pair")
    assert worst <= TOL
    assert windows >= 5, "the long context must need several windows"


def test_runtime_logits_match_transformers(qa_model):
    arch, model_dir, model, tokenizer = qa_model
    runtime = nlpengine.load(model_dir, threads=1)
    assert runtime.head == "question_answering"
    batch = tokenizer(
        [q for q, _ in PAIRS],
        [c for _, c in PAIRS],
        truncation="only_second",
        max_length=96,
        padding=True,
        return_token_type_ids=True,
        return_tensors="np",
    )
    types = batch["token_type_ids"] if runtime.config["type_vocab_size"] > 0 else None
    out = runtime.encode(batch["input_ids"], batch["attention_mask"], types)
    assert out.logits.shape == (*batch["input_ids"].shape, 2)
    kwargs = {
        "input_ids": torch.from_numpy(batch["input_ids"]),
        "attention_mask": torch.from_numpy(batch["attention_mask"]),
    }
    if "token_type_ids" in inspect.signature(model.forward).parameters and types is not None:
        kwargs["token_type_ids"] = torch.from_numpy(types)
    with torch.no_grad():
        ref = model(**kwargs)
    expected = np.stack([ref.start_logits.numpy(), ref.end_logits.numpy()], axis=-1)
    assert_close_unmasked(out.logits, expected, batch["attention_mask"], TOL, f"{arch} logits")


class CountingTokenizer:
    """A tokenizer that records every text it encodes."""

    def __init__(self, inner):
        self.inner = inner
        self.texts: list[str] = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def encode_batch(self, texts, **kwargs):
        self.texts.extend(texts)
        return self.inner.encode_batch(texts, **kwargs)


def test_a_shared_context_is_tokenized_once(qa_model):
    _, model_dir, _, _ = qa_model
    pipe = QaPipeline(model_dir, threads=1, max_seq_len=64, doc_stride=16, top_k=2)
    pairs = [(q, CONTEXTS[3]) for q in QUESTIONS[:4]]
    alone = [pipe([pair])[0] for pair in pairs]
    counting = pipe.tokenizer = CountingTokenizer(pipe.tokenizer)
    together = pipe(pairs)
    assert counting.texts.count(CONTEXTS[3]) == 1
    # The same answers; scores to float32 rounding, since a product of more rows may add
    # in another order (oneDNN's GEMM function picks its blocking by row count).
    spans = [[(a["text"], a["start"], a["end"]) for a in answers] for answers in together]
    assert spans == [[(a["text"], a["start"], a["end"]) for a in answers] for answers in alone]
    scores = [a["score"] for answers in together for a in answers]
    assert scores == pytest.approx([a["score"] for answers in alone for a in answers], rel=1e-5)
