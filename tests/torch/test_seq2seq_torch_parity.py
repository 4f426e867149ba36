"""nlpengine.torch's encoder-decoder LMs against transformers.

For bart (plain and scaled embeddings), t5 (relu tied; gated-gelu tied and untied, the
v1.0 and v1.1 layouts) and marian: the same checkpoint gives the LM logits of
transformers' ``AutoModelForSeq2SeqLM`` within 1e-4 (float32), with padding in the source
and a batch of different source and target lengths, for both ``labels`` (shifted right
behind decoder_start_token_id) and explicit ``decoder_input_ids``; the loss is
transformers'; what ``save_pretrained`` writes loads back in transformers with no missing
or unexpected keys and the same logits, in ``load_seq2seq``, and in the C++ runtime
(``nlpengine.load(dir).forward``) within 1e-4.
"""

from __future__ import annotations

import json

import nlpengine
import numpy as np
import pytest
import torch
from nlpengine.torch import Seq2SeqLM, load_seq2seq
from safetensors import safe_open
from seq2seq_models import ODD_SIZE_CONFIGS, ODD_VOCAB, save_seq2seq

#: Max abs difference of float32 logits against transformers, over every position.
TOLERANCE = 1e-4


def save_case(tmp_path, name: str, seed: int = 0):
    """(model_dir, transformers model) of ODD_SIZE_CONFIGS[name]; a config saying
    tie_word_embeddings: false gets an LM head of its own."""
    config = ODD_SIZE_CONFIGS[name]
    model_dir = tmp_path / f"{name}-{seed}"
    untie = config.get("tie_word_embeddings") is False
    return model_dir, save_seq2seq(model_dir, config, seed, untie_head=untie)


def source_batch(vocab: int, pad_id: int, lengths, seed: int = 0):
    """Right-padded source ids and mask (int64), no pad id among real tokens."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    mask = np.zeros((len(lengths), width), dtype=np.int64)
    allowed = np.array([i for i in range(vocab) if i != pad_id])
    for row, n in enumerate(lengths):
        ids[row, :n] = rng.choice(allowed, size=n)
        mask[row, :n] = 1
    return ids, mask


def label_batch(vocab: int, pad_id: int, lengths, seed: int = 1):
    """Target ids padded with -100 (as training labels are)."""
    rng = np.random.default_rng(seed)
    width = max(lengths)
    labels = np.full((len(lengths), width), -100, dtype=np.int64)
    allowed = np.array([i for i in range(vocab) if i != pad_id])
    for row, n in enumerate(lengths):
        labels[row, :n] = rng.choice(allowed, size=n)
    return labels


def _inputs(hf_model):
    pad = hf_model.config.pad_token_id
    ids, mask = source_batch(ODD_VOCAB, pad, [9, 4, 1, 6], seed=5)
    labels = label_batch(ODD_VOCAB, pad, [5, 7, 2, 3], seed=6)
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(labels)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    assert a.shape == b.shape, f"shape {tuple(a.shape)} != {tuple(b.shape)}"
    assert torch.isfinite(a).all()
    return float((a.double() - b.double()).abs().max())


@pytest.mark.parametrize("case", list(ODD_SIZE_CONFIGS))
def test_logits_loss_and_round_trip(tmp_path, case):
    from transformers import AutoModelForSeq2SeqLM

    config = ODD_SIZE_CONFIGS[case]
    model_dir, hf_model = save_case(tmp_path, case, seed=2)
    ids, mask, labels = _inputs(hf_model)
    with torch.no_grad():
        expected = hf_model(input_ids=ids, attention_mask=mask, labels=labels)

    model = load_seq2seq(model_dir)
    assert isinstance(model, Seq2SeqLM)
    assert model.config.model_type == config["model_type"]
    assert model.loading_info["unexpected_keys"] == []
    untied = config.get("tie_word_embeddings") is False
    assert model.lm_head_tied is not untied
    with torch.no_grad():
        logits = model(ids, mask, labels=labels)
        loss = model.loss(logits, labels)
    diff = _max_diff(logits, expected.logits)
    print(f"{case}: logits max abs diff {diff:.2e}")
    assert diff <= TOLERANCE
    assert abs(float(loss) - float(expected.loss)) <= TOLERANCE

    # Explicit decoder inputs give the same as labels shifted right.
    decoder_ids = model.shift_right(labels)
    assert int(decoder_ids[0, 0]) == hf_model.config.decoder_start_token_id
    with torch.no_grad():
        again = model(ids, mask, decoder_input_ids=decoder_ids)
        reference = hf_model(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder_ids)
    assert _max_diff(again, reference.logits) <= TOLERANCE

    # Save -> transformers and nlpengine load it back with the same numbers.
    out = tmp_path / "saved"
    model.save_pretrained(out)
    reloaded, info = AutoModelForSeq2SeqLM.from_pretrained(out, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"], info
    assert type(reloaded).__name__ == type(hf_model).__name__
    with torch.no_grad():
        round_trip = reloaded.eval()(input_ids=ids, attention_mask=mask, labels=labels).logits
    assert _max_diff(round_trip, expected.logits) <= TOLERANCE
    ours_again = load_seq2seq(out)
    with torch.no_grad():
        assert _max_diff(ours_again(ids, mask, labels=labels), logits) == 0.0
    runtime = nlpengine.load(out, threads=1)
    from_runtime = runtime.forward(ids.numpy(), mask.numpy(), decoder_ids.numpy())
    assert _max_diff(torch.from_numpy(from_runtime), logits) <= TOLERANCE
    saved_config = json.loads((out / "config.json").read_text())
    assert saved_config["architectures"] == [type(hf_model).__name__]
    assert (out / "generation_config.json").is_file()  # the base had one
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        names = set(f.keys())
    assert ("lm_head.weight" in names) == untied


def test_t5_scale_follows_the_saved_config(tmp_path):
    """transformers 5.x writes scale_decoder_outputs; 4.x-era v1.1 configs only say
    tie_word_embeddings: false. Both mean what transformers reads them as."""
    model_dir, _ = save_case(tmp_path, "t5-gated-gelu-untied")
    assert load_seq2seq(model_dir).config.scale_decoder_outputs is False
    config = json.loads((model_dir / "config.json").read_text())
    config.update(tie_word_embeddings=True, scale_decoder_outputs=False)
    (model_dir / "config.json").write_text(json.dumps(config))
    assert load_seq2seq(model_dir).config.scale_decoder_outputs is False
    config.pop("scale_decoder_outputs")
    (model_dir / "config.json").write_text(json.dumps(config))
    assert load_seq2seq(model_dir).config.scale_decoder_outputs is True


def test_tied_copies_are_found_under_any_name(tmp_path):
    """A checkpoint that stores the shared matrix only as encoder.embed_tokens (or with
    every tied copy) loads the same weights."""
    from safetensors.torch import load_file, save_file

    model_dir, hf_model = save_case(tmp_path, "bart")
    tensors = load_file(str(model_dir / "model.safetensors"))
    shared = tensors.pop("model.shared.weight")
    tensors["model.encoder.embed_tokens.weight"] = shared
    tensors["lm_head.weight"] = shared.clone()
    save_file(tensors, str(model_dir / "model.safetensors"), metadata={"format": "pt"})
    model = load_seq2seq(model_dir)
    assert model.loading_info["unexpected_keys"] == []
    assert model.lm_head_tied
    assert torch.equal(model.model.shared.weight, shared)


def test_missing_and_misshapen_weights_name_the_tensor(tmp_path):
    from nlpengine import ModelError
    from safetensors.torch import load_file, save_file

    model_dir, _ = save_case(tmp_path, "t5-relu-tied")
    path = model_dir / "model.safetensors"
    tensors = load_file(str(path))
    name = "decoder.block.1.layer.1.EncDecAttention.k.weight"
    removed = tensors.pop(name)
    save_file(tensors, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelError, match=name.replace(".", r"\.")):
        load_seq2seq(model_dir)
    tensors[name] = removed[:, :-1].contiguous()
    save_file(tensors, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelError, match="has shape"):
        load_seq2seq(model_dir)


def test_broken_config_names_the_file(tmp_path):
    from nlpengine import ModelError

    model_dir, _ = save_case(tmp_path, "t5-relu-tied")
    (model_dir / "config.json").write_text('{"model_type": "t5", "d_model": ')
    with pytest.raises(ModelError, match=r"config\.json: not valid JSON"):
        load_seq2seq(model_dir)


def test_gradients_flow_and_dropout_follows_train_mode(tmp_path):
    model_dir, hf_model = save_case(tmp_path, "bart")
    ids, mask, labels = _inputs(hf_model)
    model = load_seq2seq(model_dir)
    model.train()
    torch.manual_seed(0)
    first = model(ids, mask, labels=labels)
    second = model(ids, mask, labels=labels)
    assert not torch.equal(first, second)  # dropout 0.1 is active
    model.loss(first, labels).backward()
    grads = {n: p.grad for n, p in model.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert float(grads["model.shared.weight"].abs().sum()) > 0
    model.eval()
    with torch.no_grad():
        assert torch.equal(model(ids, mask, labels=labels), model(ids, mask, labels=labels))


def test_positions_beyond_the_table_are_an_error(tmp_path):
    model_dir, hf_model = save_case(tmp_path, "marian")
    model = load_seq2seq(model_dir)
    ids = torch.ones(1, 41, dtype=torch.long)
    with pytest.raises(ValueError, match="exceeds the model's maximum 40"):
        model(ids, decoder_input_ids=ids[:, :2])
    np.testing.assert_equal(model.config.max_source_positions, 40)
