"""``engine tasks``: what tasks are installed and where they come from."""

from __future__ import annotations

import json

import click

from nlpengine.plugins import get_registry


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print as JSON.")
def tasks(as_json):
    """List every task with its plugin, version and source.

    \b
    Examples:
      engine tasks
      engine tasks --json
      NLPENGINE_LOAD_PLUGINS=ner engine tasks
    """
    registry = get_registry()
    specs = registry.tasks()
    rows = [
        {
            "task": s.name,
            "plugin": s.plugin,
            "version": s.version,
            "source": s.source,
            "head": s.head,
            "description": s.description,
            "options": {o.name: o.default for o in s.options},
        }
        for s in specs.values()
    ]
    if as_json:
        failures = [{"plugin": f.name, "error": f.error} for f in registry.failures]
        click.echo(json.dumps({"tasks": rows, "failed_plugins": failures}, indent=2))
        return
    if not rows:
        click.echo("no tasks installed", err=True)
    widths = {
        k: max([len(k)] + [len(str(r[k])) for r in rows])
        for k in ("task", "plugin", "version", "source")
    }
    header = "  ".join(k.ljust(widths[k]) for k in widths) + "  description"
    click.echo(header)
    for r in rows:
        click.echo("  ".join(str(r[k]).ljust(widths[k]) for k in widths) + "  " + r["description"])
