"""Question/context pairs as model inputs: the windows a long context is split into.

This is what transformers' question-answering pipeline gets from its fast tokenizer
(``tokenizer(question, context, truncation="only_second", max_length=max_seq_len,
stride=doc_stride, return_overflowing_tokens=True)``), built here from separately tokenized
questions and contexts so that a context shared by several questions is tokenized once:

* the question comes first and is never cut (beyond ``max_question_len`` tokens, see
  :class:`PairWindows`); the context gets ``capacity = max_seq_len - special tokens -
  question tokens`` tokens per window;
* windows start every ``capacity - doc_stride`` context tokens, the last one ending at the
  context's end (so consecutive windows share ``doc_stride`` tokens, the last possibly more
  of the start and fewer at the end) — the ``tokenizers`` library's overflow rule;
* the tokenizer's post-processor decides the special tokens and token type ids around the
  two sequences (``[CLS] q [SEP] c [SEP]`` with types 0/1 for BERT, ``<s> q </s></s> c
  </s>`` for RoBERTa), read once from the tokenizer itself (:class:`PairTemplate`);
* byte-level BPE post-processors that trim offsets (RoBERTa's, with ``add_prefix_space``)
  take the first token of every window for the first token of a text and leave its
  leading space in its offsets; :meth:`ContextTokens.window_offsets` does the same.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from tokenizers import Tokenizer

__all__ = ["ContextTokens", "PairTemplate", "Window", "context_windows", "keeps_first_space"]

#: The byte-level BPE alphabet's character for a space.
_SPACE_MARK = "\u0120"


def keeps_first_space(tokenizer: Tokenizer) -> bool:
    """Whether the tokenizer's post-processor trims spaces from offsets except at the first
    token of an encoding (byte-level ``trim_offsets`` with ``add_prefix_space``)."""
    processor = json.loads(tokenizer.to_str()).get("post_processor") or {}
    steps = (
        processor.get("processors", [processor])
        if processor.get("type") == "Sequence"
        else [processor]
    )
    return any(
        p.get("type") in ("RobertaProcessing", "ByteLevel")
        and p.get("trim_offsets")
        and p.get("add_prefix_space")
        for p in steps
    )


@dataclass(frozen=True)
class PairTemplate:
    """Where the tokenizer's post-processor puts the question (sequence 0), the context
    (sequence 1) and its special tokens: a tuple of ``("special", token_id, type_id)`` and
    ``("sequence", index, type_id)`` parts. :meth:`of` reads them from the encoding of a
    sample pair (the tokenizer must not truncate)."""

    parts: tuple[tuple[str, int, int], ...]

    @classmethod
    def of(cls, tokenizer: Tokenizer) -> PairTemplate:
        pair = tokenizer.encode("question", "context", add_special_tokens=True)
        parts: list[tuple[str, int, int]] = []
        for token_id, type_id, sequence in zip(
            pair.ids, pair.type_ids, pair.sequence_ids, strict=True
        ):
            if sequence is None:
                parts.append(("special", token_id, type_id))
            elif not parts or parts[-1][:2] != ("sequence", sequence):
                parts.append(("sequence", sequence, type_id))
        sequences = [p[1] for p in parts if p[0] == "sequence"]
        if sequences != [0, 1]:
            raise ValueError(
                "the tokenizer's post-processor does not put a question and a context one "
                f"after the other (sequence order {sequences}); cannot build QA inputs"
            )
        return cls(tuple(parts))

    @property
    def num_special(self) -> int:
        return sum(1 for p in self.parts if p[0] == "special")

    def build(self, question: list[int], context: list[int]) -> tuple[list[int], list[int], int]:
        """``(input_ids, token_type_ids, position of the first context token)``."""
        ids: list[int] = []
        types: list[int] = []
        context_at = 0
        for kind, value, type_id in self.parts:
            if kind == "special":
                ids.append(value)
                types.append(type_id)
                continue
            tokens = question if value == 0 else context
            if value == 1:
                context_at = len(ids)
            ids.extend(tokens)
            types.extend([type_id] * len(tokens))
        return ids, types, context_at


@dataclass
class ContextTokens:
    """A context's tokens (no special tokens): ids, character offsets into the context,
    word indices (None where the tokenizer gives none) and token strings."""

    ids: list[int]
    offsets: list[tuple[int, int]]
    words: list[int | None]
    tokens: list[str]

    @classmethod
    def from_encoding(cls, encoding) -> ContextTokens:
        return cls(
            list(encoding.ids),
            list(encoding.offsets),
            list(encoding.word_ids),
            list(encoding.tokens),
        )

    def window_offsets(self, start: int, end: int, keep_first_space: bool):
        """The offsets of tokens ``[start, end)`` as the tokenizer gives them in a window
        (see :func:`keeps_first_space`): a window that starts inside the context keeps a
        single leading space of its first token."""
        offsets = self.offsets[start:end]
        if keep_first_space and start > 0 and offsets:
            token = self.tokens[start]
            lead = len(token) - len(token.lstrip(_SPACE_MARK + " \t\n\r"))
            if lead == 1:
                begin, stop = offsets[0]
                offsets[0] = (begin - 1, begin - 1) if len(token) == 1 else (begin - 1, stop)
        return offsets

    def __len__(self) -> int:
        return len(self.ids)


@dataclass
class Window:
    """One model input of a (question, context) pair: context tokens ``[start, end)``."""

    example: int  # index of the pair in its batch of inputs
    start: int
    end: int
    input_ids: list[int]
    type_ids: list[int]
    context_at: int  # position of context token ``start`` in ``input_ids``


def context_windows(num_tokens: int, capacity: int, stride: int) -> list[tuple[int, int]]:
    """``[start, end)`` ranges of the context tokens in each window (the ``tokenizers``
    overflow rule: starts ``capacity - stride`` apart until one reaches the end)."""
    if capacity < 1:
        raise ValueError(f"no room for context tokens (capacity {capacity})")
    if num_tokens <= capacity:
        return [(0, num_tokens)]
    if not 0 <= stride < capacity:
        raise ValueError(f"doc_stride {stride} must be smaller than the {capacity} context tokens")
    step = capacity - stride
    ranges = []
    for start in range(0, num_tokens, step):
        end = min(start + capacity, num_tokens)
        ranges.append((start, end))
        if end == num_tokens:
            break
    return ranges
