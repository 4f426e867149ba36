"""Encoder-decoder LMs for training: the base class, teacher forcing, the loss, and
loading / saving Hugging Face checkpoints by transformers' weight names.

>>> from nlpengine.torch import load_seq2seq
>>> model = load_seq2seq("path/to/bart-base")              # bart, t5 or marian
>>> logits = model(input_ids, attention_mask, labels=labels)  # (batch, target_len, vocab)
>>> loss = model.loss(logits, labels)                         # cross entropy, -100 ignored
>>> model.save_pretrained("out")    # transformers' AutoModelForSeq2SeqLM loads it

Tied weights: the LM head (and each stack's ``embed_tokens``) is the shared embedding
unless the checkpoint carries an ``lm_head.weight`` of its own that differs from it (T5
v1.1 / flan) or config.json says ``tie_word_embeddings: false`` and gives one. Checkpoints
often leave tied copies out (transformers does): the shared matrix is then found under
``shared.weight`` / ``model.shared.weight`` or any of its tied names.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nlpengine.torch.checkpoint import (
    WEIGHTS_INDEX_NAME,
    copy_checked,
    model_error,
    read_state_dict,
    write_checkpoint,
    write_json,
)
from nlpengine.torch.encoder import check_input_ids
from nlpengine.torch.seq2seq_config import Seq2SeqConfig

__all__ = [
    "GENERATION_CONFIG_NAME",
    "IGNORE_INDEX",
    "Seq2SeqLM",
    "additive_mask",
    "causal_mask",
    "load_seq2seq",
    "multi_head_attention",
    "save_seq2seq",
    "shift_tokens_right",
]

IGNORE_INDEX = -100
GENERATION_CONFIG_NAME = "generation_config.json"


def shift_tokens_right(labels: torch.Tensor, pad_token_id: int, decoder_start_token_id: int):
    """Decoder inputs for teacher forcing, as transformers makes them from ``labels``:
    ``decoder_start_token_id`` then the labels without the last, -100 replaced by pad."""
    shifted = labels.new_zeros(labels.shape)
    shifted[:, 1:] = labels[:, :-1]
    shifted[:, 0] = decoder_start_token_id
    return shifted.masked_fill(shifted == IGNORE_INDEX, pad_token_id)


def additive_mask(keep: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """A boolean "may attend" tensor -> 0 where True, the dtype's minimum where False."""
    zero = torch.zeros((), dtype=dtype, device=keep.device)
    return torch.where(keep, zero, torch.finfo(dtype).min)


def padding_keep(attention_mask: torch.Tensor) -> torch.Tensor:
    """(batch, keys) 1/0 mask -> (batch, 1, 1, keys) booleans."""
    return attention_mask.to(torch.bool)[:, None, None, :]


def causal_mask(
    length: int, decoder_attention_mask: torch.Tensor | None, dtype: torch.dtype, device
) -> torch.Tensor:
    """Additive decoder self-attention mask: causal, and padded decoder positions masked
    as keys when ``decoder_attention_mask`` is given."""
    keep = torch.ones(length, length, dtype=torch.bool, device=device).tril()[None, None]
    if decoder_attention_mask is not None:
        keep = keep & padding_keep(decoder_attention_mask)
    return additive_mask(keep, dtype)


def multi_head_attention(
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    num_heads: int,
    dropout_p: float,
    scale: float,
) -> torch.Tensor:
    """Scaled dot-product attention of projected (batch, length, heads * head_dim) queries,
    keys and values under an additive ``mask``; the heads merged back to (batch,
    query_length, heads * head_dim), ready for the output projection."""
    b, t, inner = query.shape
    head_dim = inner // num_heads

    def heads(y: torch.Tensor) -> torch.Tensor:
        return y.view(b, y.shape[1], num_heads, head_dim).transpose(1, 2)

    out = F.scaled_dot_product_attention(
        heads(query), heads(key), heads(value), attn_mask=mask, dropout_p=dropout_p, scale=scale
    )
    return out.transpose(1, 2).reshape(b, t, -1)


class Seq2SeqLM(nn.Module):
    """Base of the encoder-decoder LMs (:class:`~nlpengine.torch.bart.BartForConditionalGeneration`,
    ``MarianMTModel``, ``T5ForConditionalGeneration``).

    Subclasses name their ``model_type``, build the modules with transformers' names (an
    ``lm_head`` that is None while tied to the shared embedding) and implement ``encode``
    and ``decode`` (decoder hidden states -> logits through ``lm_logits``).
    ``shared_names`` lists the names the shared embedding is found under, the first its
    canonical one.
    """

    config: Seq2SeqConfig
    head = "seq2seq_lm"
    #: config.json's model_type this class implements.
    model_type: str
    #: Weights a checkpoint may leave out (initialised by ``reset_parameters``).
    optional_weights: tuple[str, ...] = ()
    lm_head: nn.Linear | None

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        if config.model_type != self.model_type:
            raise ValueError(
                f"expected a {self.model_type} config, got model_type {config.model_type!r}"
            )
        self.config = config
        #: generation_config.json of the loaded directory, written back on save.
        self.generation_config: dict | None = None
        self.loading_info: dict = {"initialized_keys": [], "unexpected_keys": []}

    # -- to implement --------------------------------------------------------------------

    def encode(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def decode(
        self,
        decoder_input_ids: torch.Tensor,
        encoder_hidden: torch.Tensor,
        attention_mask: torch.Tensor,
        decoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Decoder hidden states (before the LM head)."""
        raise NotImplementedError

    def lm_logits(self, decoder_hidden: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @classmethod
    def shared_names(cls, config: Seq2SeqConfig) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def lm_head_tied(self) -> bool:
        return self.lm_head is None

    def weight_aliases(self) -> dict[str, tuple[str, ...]]:
        """Other checkpoint names a parameter may be stored under (tied copies)."""
        names = self.shared_names(self.config)
        extra = ("lm_head.weight",) if self.lm_head_tied else ()
        return {names[0]: (*names[1:], *extra)}

    def reset_parameters(self) -> None:
        raise NotImplementedError

    def persistent_buffers(self) -> set[str]:
        """Buffers that belong in the checkpoint (``final_logits_bias``; not the fixed
        sinusoidal position tables)."""
        return set(self.state_dict(keep_vars=True)) & {n for n, _ in self.named_buffers()}

    # -- computation ----------------------------------------------------------------------

    def shift_right(self, labels: torch.Tensor) -> torch.Tensor:
        c = self.config
        return shift_tokens_right(labels, c.pad_token_id, c.decoder_start_token_id)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        decoder_input_ids: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
        decoder_attention_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """LM logits (batch, target_len, vocab) with teacher forcing: ``decoder_input_ids``,
        or ``labels`` shifted right behind ``decoder_start_token_id`` (as transformers does).
        """
        input_ids, attention_mask = check_input_ids(input_ids, attention_mask)
        if decoder_input_ids is None:
            if labels is None:
                raise ValueError("pass decoder_input_ids or labels")
            decoder_input_ids = self.shift_right(labels.long())
        decoder_input_ids = decoder_input_ids.long()
        if decoder_input_ids.dim() != 2 or decoder_input_ids.shape[0] != input_ids.shape[0]:
            raise ValueError(
                f"decoder_input_ids: expected ({input_ids.shape[0]}, target_len), got "
                f"{tuple(decoder_input_ids.shape)}"
            )
        encoder_hidden = self.encode(input_ids, attention_mask)
        hidden = self.decode(
            decoder_input_ids, encoder_hidden, attention_mask, decoder_attention_mask
        )
        return self.lm_logits(hidden)

    @staticmethod
    def loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean cross entropy over target tokens, ignoring label -100."""
        return F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]).float(),
            labels.reshape(-1).long(),
            ignore_index=IGNORE_INDEX,
        )

    # -- files -------------------------------------------------------------------------------

    def save_pretrained(self, out_dir: str | os.PathLike) -> None:
        save_seq2seq(self, out_dir)

    @classmethod
    def from_pretrained(cls, model_dir: str | os.PathLike) -> Seq2SeqLM:
        return load_seq2seq(model_dir)

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"model_type={c.model_type}, d_model={c.d_model}, encoder_layers={c.encoder_layers}, "
            f"decoder_layers={c.decoder_layers}, vocab={c.vocab_size}, "
            f"tied_lm_head={self.lm_head_tied}"
        )


def _model_class(model_type: str):
    if model_type == "bart":
        from nlpengine.torch.bart import BartForConditionalGeneration

        return BartForConditionalGeneration
    if model_type == "marian":
        from nlpengine.torch.marian import MarianMTModel

        return MarianMTModel
    from nlpengine.torch.t5 import T5ForConditionalGeneration

    return T5ForConditionalGeneration


def _read_generation_config(model_dir: Path) -> dict | None:
    path = model_dir / GENERATION_CONFIG_NAME
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise model_error(f"{path}: cannot read generation config: {exc}") from exc
    if not isinstance(data, dict):
        raise model_error(f"{path}: expected a JSON object")
    return data


def _untied_lm_head(tensors: dict, config: Seq2SeqConfig, shared_names: tuple[str, ...]) -> bool:
    """Whether the checkpoint has an LM head of its own (transformers 5.x does not tie
    when both are stored with different values; 4.x used tie_word_embeddings)."""
    head = tensors.get("lm_head.weight")
    if head is None:
        return False
    if not config.tie_word_embeddings:
        return True
    shared = next((tensors[n] for n in shared_names if n in tensors), None)
    return shared is None or shared.shape != head.shape or not torch.equal(shared, head)


def load_seq2seq(model_dir: str | os.PathLike) -> Seq2SeqLM:
    """Load a bart / t5 / marian directory in Hugging Face layout as a :class:`Seq2SeqLM`.

    Missing weights raise ``nlpengine.ModelError`` naming the file and tensor (except
    ``final_logits_bias``, zeros when absent, as in transformers); extra tensors are
    listed in ``model.loading_info["unexpected_keys"]``.
    """
    model_dir = Path(model_dir)
    config_path = model_dir / "config.json"
    if not config_path.is_file():
        raise model_error(f"{model_dir}: config.json is missing")
    try:
        config = Seq2SeqConfig.from_file(config_path)
    except (ValueError, KeyError, TypeError) as exc:
        raise model_error(str(exc)) from exc
    tensors, files = read_state_dict(model_dir)
    where = files[0] if len(files) == 1 else str(model_dir / WEIGHTS_INDEX_NAME)
    cls = _model_class(config.model_type)
    untied = _untied_lm_head(tensors, config, cls.shared_names(config))
    model = cls(config, tie_lm_head=not untied)
    model.reset_parameters()
    aliases = model.weight_aliases()
    optional = set(model.optional_weights)
    used: set[str] = set()
    initialised: list[str] = []
    targets = dict(model.named_parameters())
    targets.update((n, b) for n, b in model.named_buffers() if n in model.persistent_buffers())
    with torch.no_grad():
        for name, target in targets.items():
            source = next((n for n in (name, *aliases.get(name, ())) if n in tensors), None)
            if source is None:
                if name in optional:
                    initialised.append(name)
                    continue
                raise model_error(f"{where}: tensor '{name}' is missing")
            copy_checked(target, tensors[source], source, where)
            used.add(source)
    # Tied copies stored under their own names are the same weights, not unexpected.
    for name in list(tensors):
        if name not in used and any(name in names for names in aliases.values()):
            used.add(name)
    model.loading_info = {
        "initialized_keys": initialised,
        "unexpected_keys": sorted(set(tensors) - used),
    }
    model.generation_config = _read_generation_config(model_dir)
    model.eval()
    return model


def save_seq2seq(model: Seq2SeqLM, out_dir: str | os.PathLike) -> None:
    """Write ``config.json``, ``model.safetensors`` (each tensor once, under its canonical
    transformers name: tied copies are left out as transformers leaves them out) and
    ``generation_config.json`` when the loaded directory had one."""
    out_dir = Path(out_dir)
    state = {
        name: tensor.detach().to("cpu", torch.float32).contiguous().clone()
        for name, tensor in model.named_parameters()
    }
    persistent = model.persistent_buffers()
    for name, buffer in model.named_buffers():
        if name in persistent:
            state[name] = buffer.detach().to("cpu", torch.float32).contiguous().clone()
    write_checkpoint(out_dir, state, model.config.to_dict(tied_lm_head=model.lm_head_tied))
    if model.generation_config is not None:
        write_json(out_dir / GENERATION_CONFIG_NAME, model.generation_config)
