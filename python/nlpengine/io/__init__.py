"""Readers for batch-job inputs and the resumable JSONL writer for their outputs."""

from nlpengine.io.readers import (
    FORMATS,
    InputError,
    InputItem,
    guess_format,
    read_records,
)
from nlpengine.io.writer import ResumableOutput

__all__ = [
    "FORMATS",
    "InputError",
    "InputItem",
    "ResumableOutput",
    "guess_format",
    "read_records",
]
