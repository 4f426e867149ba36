"""Named-entity recognition for nlpengine: a pipeline over the runtime's token-classification
head, tag-scheme helpers, and seqeval metrics.

>>> from nlpengine_ner import NerPipeline
>>> ner = NerPipeline("path/to/bert-ner", aggregation_strategy="simple")
>>> ner(["Ada Lovelace was born in London."])
[[{'label': 'PER', 'text': 'Ada Lovelace', 'start': 0, 'end': 12, 'score': 0.99...}, ...]]
"""

from nlpengine_ner.metrics import ner_metrics
from nlpengine_ner.pipeline import NerPipeline
from nlpengine_ner.tags import detect_scheme, entities_to_tags

__all__ = ["NerPipeline", "detect_scheme", "entities_to_tags", "ner_metrics"]
