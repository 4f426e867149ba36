"""nlpengine: Hugging Face checkpoints in, task results out, with a C++ runtime in the middle.

>>> import nlpengine
>>> model = nlpengine.load("path/to/all-MiniLM-L6-v2")
>>> out = model.encode(input_ids, attention_mask)
>>> out.last_hidden_state.shape
(2, 9, 384)
"""

from nlpengine._core import (
    __version__,
    bf16_arithmetic,
    gemm_library,
    int8_activation_max,
    int8_arithmetic,
    int8_mixed_arithmetic,
    int8_weight_max,
)
from nlpengine.errors import InvalidInputError, ModelError
from nlpengine.pipeline import TaskPipeline, pipeline  # noqa: E402  (needs load above)
from nlpengine.runtime import EncoderModel, EncoderOutput, load
from nlpengine.seq2seq import GenerationOutput, Seq2SeqModel
from nlpengine.tasks import RecordError, TaskOption, TaskSpec

__all__ = [
    "EncoderModel",
    "EncoderOutput",
    "GenerationOutput",
    "InvalidInputError",
    "ModelError",
    "RecordError",
    "Seq2SeqModel",
    "TaskOption",
    "TaskPipeline",
    "TaskSpec",
    "__version__",
    "bf16_arithmetic",
    "gemm_library",
    "int8_activation_max",
    "int8_arithmetic",
    "int8_mixed_arithmetic",
    "int8_weight_max",
    "load",
    "pipeline",
]
