"""The ``engine`` command line.

Example:

    engine encode --input examples/sentences.txt --output embeddings.jsonl
"""

import click

from nlpengine import __version__
from nlpengine.cli.encode import encode


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="nlpengine")
def main() -> None:
    """nlpengine: Hugging Face checkpoints in, task results out.

    \b
    Example:
      engine encode --input examples/sentences.txt --output embeddings.jsonl
    """


main.add_command(encode)
