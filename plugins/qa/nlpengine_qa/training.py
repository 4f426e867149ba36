"""Training features for ``engine train --task qa``: SQuAD questions to answer positions.

Each question/context pair is cut into the windows the pipeline runs
(:mod:`nlpengine_qa.features`, ``max_seq_len`` = the training ``--max-length``, doc stride
``min(max_length // 2, 128)``, questions cut to 64 tokens) and every window is one
training feature, as in transformers' ``run_qa`` example. Its labels are the first
gold answer's first and last context tokens (the tokens whose characters overlap the
answer); a window that does not hold the whole answer, and every window of an
unanswerable (SQuAD 2.0) question, points both at the CLS position 0. The loss is the
mean of the start and end cross entropies (``AutoModelForQuestionAnswering``'s).
"""

from __future__ import annotations

from pathlib import Path

from nlpengine.io import InputError, guess_format, read_records
from nlpengine.io.squad import question_record

from nlpengine_qa.features import ContextTokens, PairTemplate, context_windows

#: The labels of a span head: transformers' default names for its two outputs.
LABELS = ["LABEL_0", "LABEL_1"]
MAX_QUESTION_LEN = 64
INPUT_FORMATS = ("squad", "jsonl")


def read_gold(path: Path):
    """``(line, record)`` per question of a SQuAD file or of JSONL records ``{"id",
    "question", "context", "answers": [{"text", "answer_start"}], "is_impossible"?}``;
    an ``InputError`` naming the file and line for a question that cannot be used."""
    path = Path(path)
    fmt = guess_format(path, INPUT_FORMATS)
    if fmt not in INPUT_FORMATS:
        raise InputError(f"{path}: qa gold data is a SQuAD .json file or .jsonl records")
    for item in read_records(path, fmt):
        if item.error:
            raise InputError(f"{path}:{item.line}: {item.error}")
        record = item.record
        if fmt == "jsonl":
            context = record.get("context")
            if not isinstance(context, str):
                raise InputError(f"{path}:{item.line}: missing 'context' string")
            try:
                record = question_record(record, context)
            except ValueError as e:
                raise InputError(f"{path}:{item.line}: {e}") from e
        yield item.line, record


def read_examples(path: Path) -> list[dict]:
    examples = [{**record, "line": line} for line, record in read_gold(path)]
    if not examples:
        raise InputError(f"{path}: no questions")
    return examples


def label_list(examples: list[dict]) -> list[str]:
    return list(LABELS)


def featurize(examples: list[dict], tokenizer, label2id: dict[str, int], max_length: int):
    tokenizer.no_padding()
    tokenizer.no_truncation()
    template = PairTemplate.of(tokenizer)
    stride = min(max_length // 2, 128)
    contexts: dict[str, ContextTokens] = {}
    for text, encoding in zip(
        *_unique_encodings(tokenizer, [e["context"] for e in examples]), strict=True
    ):
        contexts[text] = ContextTokens.from_encoding(encoding)
    questions = tokenizer.encode_batch([e["question"] for e in examples], add_special_tokens=False)
    features = []
    for example, question in zip(examples, questions, strict=True):
        q_ids = list(question.ids[:MAX_QUESTION_LEN])
        context = contexts[example["context"]]
        capacity = max_length - template.num_special - len(q_ids)
        if capacity <= stride and len(context) > capacity:
            raise InputError(
                f"line {example['line']}: the question leaves {max(capacity, 0)} context tokens "
                f"per window of {max_length}; raise --max-length"
            )
        span = None
        if not example["is_impossible"]:
            span = _token_span(context, example["answers"][0])
        for start, end in context_windows(len(context), capacity, stride):
            ids, types, at = template.build(q_ids, context.ids[start:end])
            positions = [0, 0]
            if span is not None and start <= span[0] and span[1] < end:
                positions = [span[0] - start + at, span[1] - start + at]
            features.append(
                {
                    "input_ids": ids,
                    "attention_mask": [1] * len(ids),
                    "token_type_ids": types,
                    "labels": positions,
                }
            )
    return features


def _unique_encodings(tokenizer, texts: list[str]):
    unique = list(dict.fromkeys(texts))
    return unique, tokenizer.encode_batch(unique, add_special_tokens=False)


def _token_span(context: ContextTokens, answer: dict) -> tuple[int, int] | None:
    """The first and last context tokens that overlap the answer's characters (None when
    no token does, e.g. an answer of only spaces)."""
    first_char = answer["answer_start"]
    last_char = first_char + len(answer["text"])
    tokens = [
        t for t, (a, b) in enumerate(context.offsets) if b > first_char and a < last_char and b > a
    ]
    return (tokens[0], tokens[-1]) if tokens else None


def span_loss(logits, labels):
    """``(sum over the batch, number of examples)`` of the span loss (for the trainer)."""
    from nlpengine.torch.heads import span_loss as loss

    return loss(logits, labels, reduction="sum"), labels.shape[0]
