"""The training side: ``engine train`` fine-tunes what the runtime runs (needs torch:
``pip install nlpengine[train]``)."""

from nlpengine.training.config import LoraSettings, TrainConfig

__all__ = ["LoraSettings", "TrainConfig"]
