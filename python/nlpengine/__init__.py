"""nlpengine: Hugging Face checkpoints in, task results out, with a C++ runtime in the middle.

>>> import nlpengine
>>> model = nlpengine.load("path/to/all-MiniLM-L6-v2")
>>> out = model.encode(input_ids, attention_mask)
>>> out.last_hidden_state.shape
(2, 9, 384)
"""

from nlpengine._core import __version__
from nlpengine.errors import InvalidInputError, ModelError
from nlpengine.runtime import EncoderModel, EncoderOutput, load

__all__ = [
    "EncoderModel",
    "EncoderOutput",
    "InvalidInputError",
    "ModelError",
    "__version__",
    "load",
]
