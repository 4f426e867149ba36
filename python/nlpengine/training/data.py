"""Batches of features: a seeded shuffle per epoch, split across processes so that
every step's global batch is the same whatever the number of processes."""

from __future__ import annotations

IGNORE_INDEX = -100


def epoch_batches(num_examples: int, batch_size: int, seed: int, epoch: int, world_size: int):
    """Global batches of example indices for ``epoch`` (a shuffle that depends only on
    seed and epoch, so a resumed run sees the same order). A final batch smaller than
    the number of processes is dropped, so that every process takes the same steps."""
    import torch

    generator = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
    order = torch.randperm(num_examples, generator=generator).tolist()
    batches = [order[i : i + batch_size] for i in range(0, num_examples, batch_size)]
    return [b for b in batches if len(b) >= world_size]


def collate(features: list[dict], pad_id: int, token_labels: bool):
    """Pads a list of features into tensors, each key to its longest in the batch; with
    ``token_labels`` the labels are per token (padded with -100: per source token for a
    token head, per target token for an encoder-decoder), else one int, a multi-hot
    float list or a list of ints (a span's start and end) per example."""
    import torch

    def pad(key: str, value):
        longest = max(len(f[key]) for f in features)
        return [f[key] + [value] * (longest - len(f[key])) for f in features]

    batch = {
        "input_ids": torch.tensor(pad("input_ids", pad_id), dtype=torch.long),
        "attention_mask": torch.tensor(pad("attention_mask", 0), dtype=torch.long),
    }
    if all("token_type_ids" in f for f in features):
        batch["token_type_ids"] = torch.tensor(pad("token_type_ids", 0), dtype=torch.long)
    if token_labels:
        batch["labels"] = torch.tensor(pad("labels", IGNORE_INDEX), dtype=torch.long)
    elif isinstance(features[0]["labels"], list):
        labels = [f["labels"] for f in features]
        integral = all(isinstance(v, int) for row in labels for v in row)
        batch["labels"] = torch.tensor(labels, dtype=torch.long if integral else torch.float)
    else:
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=torch.long)
    return batch
