"""PyTorch modules mirroring the runtime's encoders, for training.

Importing this subpackage needs torch (the ``train`` extra); ``import nlpengine``
alone never imports torch.

>>> from nlpengine.torch import load_pretrained
>>> model = load_pretrained("path/to/all-MiniLM-L6-v2", head="token_classification",
...                         num_labels=5)
>>> logits = model(input_ids, attention_mask)          # (batch, seq, 5)
>>> model.save_pretrained("out")                        # nlpengine.load("out") runs it

Supported model types: bert, roberta, xlm-roberta, camembert, distilbert, electra.
Heads: None (bare encoder), "sequence_classification", "token_classification";
``load_pretrained(head=None)`` takes the head from config.json's "architectures"
(pass ``head="none"`` to load only the encoder of a task checkpoint).

Encoder-decoder LMs (bart, t5 v1.0 and v1.1/flan, marian): ``load_seq2seq(dir)`` gives a
:class:`Seq2SeqLM` whose ``model(input_ids, attention_mask, labels=labels)`` returns the LM
logits with teacher forcing and ``save_pretrained`` writes what transformers'
``AutoModelForSeq2SeqLM`` loads.
"""

from nlpengine.torch.checkpoint import load_pretrained, read_state_dict, save_pretrained
from nlpengine.torch.config import EncoderConfig, architecture_name
from nlpengine.torch.encoder import Encoder
from nlpengine.torch.heads import ClassificationHead, EncoderModel
from nlpengine.torch.lora import apply_lora, lora_state_dict, merge_lora, save_adapter
from nlpengine.torch.seq2seq import Seq2SeqLM, load_seq2seq, save_seq2seq, shift_tokens_right
from nlpengine.torch.seq2seq_config import SEQ2SEQ_MODEL_TYPES, Seq2SeqConfig

__all__ = [
    "ClassificationHead",
    "Encoder",
    "EncoderConfig",
    "EncoderModel",
    "SEQ2SEQ_MODEL_TYPES",
    "Seq2SeqConfig",
    "Seq2SeqLM",
    "apply_lora",
    "architecture_name",
    "load_pretrained",
    "load_seq2seq",
    "lora_state_dict",
    "merge_lora",
    "read_state_dict",
    "save_adapter",
    "save_pretrained",
    "save_seq2seq",
    "shift_tokens_right",
]
