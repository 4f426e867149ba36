"""The training loop behind ``engine train``. Nothing in it is task-specific: the task's
:class:`~nlpengine.tasks.TrainingSpec` reads and featurizes the data, the task's head
comes from ``nlpengine.torch``, and each epoch is scored with the task's own metrics by
running the epoch's model in the C++ runtime (so what is kept is what the runtime runs).

AdamW (no decay on biases and norms), linear warmup then linear decay, gradient clipping,
a seed that makes runs repeatable, the best epoch kept, a checkpoint after every epoch that
``resume=True`` continues from, and torchrun (DDP, gloo) with the same global batch.
"""

from __future__ import annotations

import copy
import json
import math
import random
import shutil
import sys
import time
from pathlib import Path

import numpy as np

from nlpengine.tasks import TaskSpec
from nlpengine.tokenization import TOKEN_TYPE_SCHEMES, TOKEN_TYPES_KEY, model_token_type_scheme
from nlpengine.training.config import TrainConfig
from nlpengine.training.data import IGNORE_INDEX, collate, epoch_batches
from nlpengine.training.distributed import ProcessGroup

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "vocab.txt",
    "vocab.json",
    "merges.txt",
    "sentencepiece.bpe.model",
    "spiece.model",
    "source.spm",
    "target.spm",
)
STATE_DIR = "checkpoint"
#: The embedding module (Hugging Face name) that --token-types casing trains.
TOKEN_TYPE_MODULE = "token_type_embeddings"
#: Heads whose labels are one per token (cross entropy over every label that is not -100).
TOKEN_LEVEL_HEADS = ("token_classification", "seq2seq_lm")


class TrainingError(RuntimeError):
    pass


def _log(group: ProcessGroup, message: str) -> None:
    if group.is_main:
        print(message, file=sys.stderr, flush=True)


def copy_tokenizer(source: Path, target: Path) -> None:
    for name in TOKENIZER_FILES:
        if (source / name).is_file():
            shutil.copy(source / name, target / name)


def _head_modules(model) -> tuple[str, ...]:
    names = {name for name, _ in model.named_children()}
    return tuple(n for n in ("pre_classifier", "classifier") if n in names)


def _token_type_scheme(spec: TaskSpec, base_dir: Path, config: TrainConfig) -> str:
    """The token-type scheme to train with: ``--token-types``, else the base model's own
    (fine-tuning a casing model again keeps casing)."""
    scheme = config.token_types
    if scheme not in TOKEN_TYPE_SCHEMES:
        raise TrainingError(
            f"token_types must be one of {', '.join(TOKEN_TYPE_SCHEMES)}, got {scheme!r}"
        )
    if scheme == "segments":
        scheme = model_token_type_scheme(base_dir)
    if scheme not in spec.token_type_schemes:
        raise TrainingError(
            f"task '{spec.name}' cannot feed token types '{scheme}' (it supports: "
            f"{', '.join(spec.token_type_schemes)})"
        )
    return scheme


def _record_token_types(model, scheme: str, base_dir: Path) -> None:
    """Check the model has token-type embeddings for ``scheme`` and write the scheme into
    its config (config.json of every epoch and of the output, adapter or not)."""
    rows = _token_type_rows(model)
    if rows < 2:
        raise TrainingError(
            f"{base_dir}: --token-types {scheme} needs token-type embeddings with at least 2 "
            f"rows (type_vocab_size); this model has {rows}"
        )
    model.config.raw[TOKEN_TYPES_KEY] = scheme


def _token_type_rows(model) -> int:
    for name, module in model.named_modules():
        if name.endswith(TOKEN_TYPE_MODULE) and hasattr(module, "num_embeddings"):
            return int(module.num_embeddings)
    return 0


def model_token_types(model) -> str:
    """The token-type scheme recorded in a torch model's config ("segments" if none)."""
    raw = getattr(getattr(model, "config", None), "raw", None)
    return (raw or {}).get(TOKEN_TYPES_KEY) or "segments"


def _saved_modules(model, token_types: str) -> tuple[str, ...]:
    """What a LoRA adapter saves whole: the head, and the token-type embeddings when they
    carry something the base never learned (casing)."""
    extra = (TOKEN_TYPE_MODULE,) if token_types != "segments" else ()
    return _head_modules(model) + extra


def _loss(torch, logits, labels, token_labels, multi_label, group: ProcessGroup, task_loss=None):
    """The mean loss over the *global* batch: each process divides its sum by the global
    count times the world size, since DDP averages gradients over processes.
    ``task_loss(logits, labels)`` (the task's own loss) gives that sum and count."""
    if task_loss is not None:
        total, count = task_loss(logits, labels)
        count = torch.as_tensor(count)
    elif token_labels:
        flat = logits.reshape(-1, logits.shape[-1])
        target = labels.reshape(-1)
        total = torch.nn.functional.cross_entropy(
            flat, target, ignore_index=IGNORE_INDEX, reduction="sum"
        )
        count = (target != IGNORE_INDEX).sum()
    elif multi_label:
        total = torch.nn.functional.binary_cross_entropy_with_logits(
            logits, labels, reduction="sum"
        )
        count = torch.tensor(labels.numel())
    else:
        total = torch.nn.functional.cross_entropy(logits, labels, reduction="sum")
        count = torch.tensor(labels.shape[0])
    global_count = group.all_reduce_sum(count.detach().clone().to(torch.float64))
    return total / max(float(global_count), 1.0) * group.world_size


def train(
    spec: TaskSpec,
    base_dir: Path,
    train_path: Path,
    dev_path: Path,
    out_dir: Path,
    config: TrainConfig,
    resume: bool = False,
) -> dict:
    """Fine-tunes ``base_dir`` for ``spec`` and writes the best epoch to ``out_dir``."""
    import torch

    if spec.training is None:
        raise TrainingError(f"task '{spec.name}' does not support training")
    if config.lora is not None and not spec.training.supports_lora:
        raise TrainingError(f"task '{spec.name}' does not support --lora training yet")
    group = ProcessGroup.from_environment()
    if config.batch_size % group.world_size:
        raise TrainingError(
            f"batch size {config.batch_size} is not a multiple of the {group.world_size} processes"
        )
    if config.threads:
        torch.set_num_threads(config.threads)
    random.seed(config.seed)
    np.random.seed(config.seed)
    torch.manual_seed(config.seed)

    base_dir, out_dir = Path(base_dir), Path(out_dir)
    state_dir = out_dir / STATE_DIR
    state_file = state_dir / "state.pt"
    training = spec.training
    # The task's options (engine train --items F, ...): the hooks named in
    # TrainingSpec.task_options take them; the per-epoch pipeline takes all given.
    task_options = spec.resolve_options(config.task_options)
    hook_options = {name: task_options[name] for name in training.task_options}
    examples = training.read_examples(train_path, **hook_options)
    if config.limit_train:
        examples = examples[: config.limit_train]
    labels = training.label_list(examples)
    label2id = {label: i for i, label in enumerate(labels)}
    problem_type = training.problem_type(examples)
    multi_label = problem_type == "multi_label_classification"
    token_labels = spec.head in TOKEN_LEVEL_HEADS

    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(base_dir / "tokenizer.json"))
    pad_id = tokenizer.padding["pad_id"] if tokenizer.padding else _pad_id(tokenizer)
    extra = (
        training.featurize_options(base_dir, **hook_options) if training.featurize_options else {}
    )
    token_types = _token_type_scheme(spec, base_dir, config)
    if token_types != "segments":
        extra["token_types"] = token_types
    features = training.featurize(examples, tokenizer, label2id, config.max_length, **extra)

    if training.load_model is not None:
        model = training.load_model(base_dir, labels, problem_type, **hook_options)
    else:
        from nlpengine.torch import load_pretrained

        model = load_pretrained(
            base_dir,
            head=spec.head,
            num_labels=len(labels),
            id2label=dict(enumerate(labels)),
            problem_type=problem_type,
        )
    if token_types != "segments":
        _record_token_types(model, token_types, base_dir)
    if config.lora is not None:
        from nlpengine.torch.lora import apply_lora

        apply_lora(
            model,
            r=config.lora.r,
            alpha=config.lora.alpha,
            targets=config.lora.targets,
            dropout=config.lora.dropout,
            modules_to_save=_saved_modules(model, token_types),
        )
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    no_decay = (
        "bias",
        "LayerNorm.weight",
        "layer_norm.weight",
        "norm.weight",
        "layernorm_embedding.weight",
    )
    optimizer = torch.optim.AdamW(
        [
            {
                "params": [p for n, p in trainable if not n.endswith(no_decay)],
                "weight_decay": config.weight_decay,
            },
            {"params": [p for n, p in trainable if n.endswith(no_decay)], "weight_decay": 0.0},
        ],
        lr=config.learning_rate,
    )
    steps_per_epoch = len(
        epoch_batches(len(features), config.batch_size, config.seed, 0, group.world_size)
    )
    total_steps = max(1, steps_per_epoch * config.epochs)
    warmup = int(total_steps * config.warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    start_epoch, best, history = 0, -math.inf, []
    if resume and state_file.exists():
        state = torch.load(state_file, weights_only=False)
        if state["labels"] != labels:
            raise TrainingError(f"{state_file}: the checkpoint's labels differ from the data's")
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["torch_rng"])
        start_epoch, best, history = state["epoch"] + 1, state["best"], state["history"]
        _log(group, f"train: resuming after epoch {start_epoch} of {config.epochs}")
    elif resume:
        _log(group, f"train: no checkpoint in {state_dir}, starting from scratch")

    net = model
    if group.distributed:
        net = torch.nn.parallel.DistributedDataParallel(model)

    for epoch in range(start_epoch, config.epochs):
        model.train()
        batches = epoch_batches(
            len(features), config.batch_size, config.seed, epoch, group.world_size
        )
        running: list[float] = []
        progress = _Progress(epoch, config.epochs)
        for step, global_batch in enumerate(batches, start=1):
            mine = global_batch[group.rank :: group.world_size]
            chosen = [features[i] for i in mine]
            if training.collate is not None:
                batch = training.collate(chosen, pad_id)
            else:
                batch = collate(chosen, pad_id, token_labels)
            logits = net(**{k: batch[k] for k in training.model_inputs if k in batch})
            loss = _loss(
                torch, logits, batch["labels"], token_labels, multi_label, group, training.loss
            )
            loss.backward()
            torch.nn.utils.clip_grad_norm_([p for _, p in trainable], config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            running.append(loss.item() / group.world_size)
            if group.is_main:
                progress.update(step, len(batches), running, scheduler.get_last_lr()[0])
        if group.is_main:
            progress.close()
            metrics = _evaluate_epoch(spec, model, base_dir, dev_path, out_dir, epoch, config)
            score = float(metrics[training.metric])
            record = {
                "epoch": epoch + 1,
                "train_loss": float(np.mean(running)) if running else None,
                training.metric: score,
                "metrics": metrics,
            }
            history.append(record)
            _log(group, f"train: epoch {epoch + 1}: dev {training.metric} {score:.4f}")
            if score > best:
                best = score
                _write_output(model, base_dir, out_dir, config, spec, history)
                _log(group, f"train: best so far, written to {out_dir}")
            state_dir.mkdir(parents=True, exist_ok=True)
            torch.save(
                {
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "torch_rng": torch.get_rng_state(),
                    "epoch": epoch,
                    "best": best,
                    "history": history,
                    "labels": labels,
                },
                state_dir / "state.tmp",
            )
            (state_dir / "state.tmp").replace(state_file)
            _write_log(out_dir, config, spec, base_dir, history)
        group.barrier()
    group.close()
    return {"best": best, "history": history, "out": str(out_dir)}


class _Progress:
    """Loss and speed on stderr: redrawn in place on a terminal, else a line per tenth."""

    def __init__(self, epoch: int, epochs: int):
        self.label = f"train: epoch {epoch + 1}/{epochs}"
        self.tty = sys.stderr.isatty()
        self.started = time.perf_counter()
        self.last = 0.0

    def update(self, step: int, steps: int, losses: list[float], lr: float) -> None:
        now = time.perf_counter()
        tenth = max(1, steps // 10)
        if self.tty and now - self.last < 0.2 and step != steps:
            return
        if not self.tty and step % tenth and step != steps:
            return
        self.last = now
        rate = step / max(now - self.started, 1e-9)
        line = (
            f"{self.label} step {step}/{steps} loss {np.mean(losses[-50:]):.4f} "
            f"lr {lr:.2e} ({rate:.1f} steps/s)"
        )
        print(
            ("\r" + line) if self.tty else line,
            end="" if self.tty else "\n",
            file=sys.stderr,
            flush=True,
        )

    def close(self) -> None:
        if self.tty:
            print(file=sys.stderr)


def _pad_id(tokenizer) -> int:
    for token in ("[PAD]", "<pad>"):
        if tokenizer.token_to_id(token) is not None:
            return tokenizer.token_to_id(token)
    return 0


def _merged_copy(model):
    merged = copy.deepcopy(model)
    if any("lora_" in n for n, _ in merged.named_parameters()):
        from nlpengine.torch.lora import merge_lora

        merge_lora(merged)
    return merged


def _evaluate_epoch(spec, model, base_dir, dev_path, out_dir, epoch, config) -> dict:
    """Scores the epoch's (merged) weights with the task's metrics in the C++ runtime."""
    import nlpengine

    epoch_dir = out_dir / STATE_DIR / "last-epoch"
    if epoch_dir.exists():
        shutil.rmtree(epoch_dir)
    epoch_dir.mkdir(parents=True)
    model.eval()
    _merged_copy(model).save_pretrained(epoch_dir)
    copy_tokenizer(base_dir, epoch_dir)
    pipe = nlpengine.pipeline(
        spec.name,
        model=epoch_dir,
        threads=config.threads,
        batch_size=config.eval_batch_size,
        **config.task_options,
    )
    return spec.evaluate(pipe, Path(dev_path), spec.resolve_options(config.task_options))


def _write_output(model, base_dir, out_dir, config, spec, history) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.lora is None:
        model.save_pretrained(out_dir)
    else:
        from nlpengine.torch.lora import save_adapter

        save_adapter(
            model,
            out_dir,
            base_model_path=base_dir.resolve(),
            r=config.lora.r,
            alpha=config.lora.alpha,
            targets=config.lora.targets,
            modules_to_save=_saved_modules(model, model_token_types(model)),
            task_type="TOKEN_CLS" if spec.head == "token_classification" else "SEQ_CLS",
        )
    copy_tokenizer(base_dir, out_dir)


def _write_log(out_dir, config, spec, base_dir, history) -> None:
    log = {
        "task": spec.name,
        "base": str(base_dir),
        "config": config.to_dict(),
        "history": history,
        "best_epoch": max(history, key=lambda h: h[spec.training.metric]),
    }
    (out_dir / "training_log.json").write_text(json.dumps(log, indent=2) + "\n", encoding="utf-8")
