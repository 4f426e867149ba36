"""Exceptions raised by nlpengine.

``ModelError``: a model directory, weights file or config that cannot be used; the
message names the file and the tensor or key. ``InvalidInputError`` (a ``ValueError``):
inputs a model cannot run on, such as a token id outside the vocabulary.
"""

from nlpengine._core import InvalidInputError, ModelError

__all__ = ["InvalidInputError", "ModelError"]
