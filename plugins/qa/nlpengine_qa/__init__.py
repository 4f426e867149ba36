"""The built-in ``qa`` task: extractive question answering (SQuAD v1.1/v2.0)."""

from nlpengine_qa.metrics import exact_match, f1_score, normalize_answer, squad_metrics
from nlpengine_qa.pipeline import QaPipeline

__all__ = ["QaPipeline", "exact_match", "f1_score", "normalize_answer", "squad_metrics"]
