"""nlpengine's built-in recommendation task: items ranked for users by a bi-encoder
(pooled embeddings) or a cross-encoder (a sequence-classification head over pairs)."""

from nlpengine_recommendation.metrics import ranking_metrics
from nlpengine_recommendation.pipeline import RecommendationPipeline

__all__ = ["RecommendationPipeline", "ranking_metrics"]
