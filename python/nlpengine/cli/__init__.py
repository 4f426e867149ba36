"""The ``engine`` command line.

Example:

    engine run --task ner --input docs.jsonl --output entities.jsonl
"""

import click

from nlpengine import __version__
from nlpengine.cli.bench import bench
from nlpengine.cli.encode import encode
from nlpengine.cli.eval import eval_command
from nlpengine.cli.run import run
from nlpengine.cli.tasks import tasks
from nlpengine.cli.train import train
from nlpengine.plugins import get_registry


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nlpengine")
def main() -> None:
    """nlpengine: Hugging Face checkpoints in, task results out.

    \b
    Examples:
      engine tasks
      engine run --task ner --input docs.jsonl --output entities.jsonl
      engine eval --task ner --model ./my-ner --data test.conll
      engine train --task ner --base ./base --train train.conll --dev dev.conll --out ./my-ner
      engine encode --input sentences.txt --output embeddings.jsonl
      engine bench --task ner --input docs.jsonl --compute-type float32,int8
    """


main.add_command(run)
main.add_command(eval_command)
main.add_command(tasks)
main.add_command(train)
main.add_command(encode)
main.add_command(bench)


def _add_plugin_commands() -> None:
    try:
        registry = get_registry()
        registry.load()
        registry.manager.hook.register_commands(cli=main)
    except Exception as e:  # a broken plugin must not break the CLI
        click.echo(f"nlpengine: plugin commands not added: {e}", err=True)


_add_plugin_commands()
