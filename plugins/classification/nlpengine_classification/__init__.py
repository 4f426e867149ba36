"""nlpengine's built-in text-classification task: the inference pipeline and its metrics."""

from nlpengine_classification.metrics import classification_metrics
from nlpengine_classification.pipeline import ClassificationPipeline

__all__ = ["ClassificationPipeline", "classification_metrics"]
