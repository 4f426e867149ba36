"""The hooks a plugin can implement (pluggy project "nlpengine").

A plugin is a module or package named by an entry point in the ``nlpengine`` group::

    [project.entry-points.nlpengine]
    wordcount = "nlpengine_wordcount.plugin"

whose functions are marked with :data:`hookimpl`.
"""

from __future__ import annotations

import pluggy

PROJECT_NAME = "nlpengine"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)


# --- registration phase ---------------------------------------------------------------


@hookspec
def register_tasks(register):
    """Register the plugin's tasks: call ``register(TaskSpec(...))`` once per task.

    Called once, the first time the engine needs the list of tasks.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``engine`` click group (``cli.add_command(...)``)."""
