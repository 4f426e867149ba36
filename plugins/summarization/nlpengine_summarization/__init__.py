"""Summarization for nlpengine: a pipeline over the runtime's encoder-decoder generation
(bart, t5, marian), ROUGE metrics (rouge-score) and training features.

>>> from nlpengine_summarization import SummarizationPipeline
>>> summarize = SummarizationPipeline("path/to/bart-cnn", num_beams=4, max_new_tokens=60)
>>> summarize(["A long article ..."])
[{'summary': '...', 'score': -0.61}]
"""

from nlpengine_summarization.metrics import rouge_scores
from nlpengine_summarization.pipeline import SummarizationPipeline

__all__ = ["SummarizationPipeline", "rouge_scores"]
