"""Plugin discovery: a real third-party package installed with pip, the allowlist,
hook tracing, a broken plugin, and every hook exercised."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import nlpengine
import pytest
from nlpengine import plugins
from nlpengine.tasks import TaskSpec

PLUGIN_SOURCE = Path(__file__).resolve().parents[1] / "third_party_plugin"
PLUGIN_DIST = "nlpengine-sentence-embedding"
ENGINE = Path(sys.executable).with_name("engine")


def engine(*args, env=None, check=True):
    full_env = {**os.environ, **(env or {})}
    proc = subprocess.run(
        [str(ENGINE), *map(str, args)], capture_output=True, text=True, env=full_env, timeout=600
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"engine {args} failed:\n{proc.stderr}")
    return proc


@pytest.fixture(scope="module")
def installed_plugin():
    """pip-installs the example plugin into this environment for the module's tests."""
    pip = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--no-deps",
        "--no-build-isolation",
        "--disable-pip-version-check",
        str(PLUGIN_SOURCE),
    ]
    subprocess.run(pip, check=True, capture_output=True, timeout=600)
    plugins.reset_registry()
    yield metadata.version(PLUGIN_DIST)
    subprocess.run(
        [sys.executable, "-m", "pip", "uninstall", "-y", "-q", PLUGIN_DIST],
        check=True,
        capture_output=True,
        timeout=600,
    )
    plugins.reset_registry()


def test_engine_tasks_lists_the_installed_plugin(installed_plugin):
    listing = json.loads(engine("tasks", "--json").stdout)
    by_name = {t["task"]: t for t in listing["tasks"]}
    task = by_name["sentence-embedding"]
    assert task["plugin"] == "sentence_embedding"
    assert task["version"] == installed_plugin == "0.3.1"
    assert task["source"].startswith(PLUGIN_DIST)
    assert {"ner", "classification"} <= set(by_name)
    assert "sentence-embedding" in engine("tasks").stdout


def test_engine_run_uses_the_plugin_task(installed_plugin, tmp_path, minilm_dir):
    src = tmp_path / "in.txt"
    src.write_text("A quiet morning by the lake.\nThe train was late again.\n", "utf-8")
    out = tmp_path / "emb.jsonl"
    engine(
        "run",
        "--task",
        "sentence-embedding",
        "--model",
        minilm_dir,
        "--input",
        src,
        "--output",
        out,
        "--digits",
        "4",
    )
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["id"] for r in rows] == [1, 2]
    assert all(len(r["embedding"]) == 384 for r in rows)
    norm = sum(v * v for v in rows[0]["embedding"]) ** 0.5
    assert abs(norm - 1.0) < 1e-3
    assert all(v == round(v, 4) for v in rows[0]["embedding"])


def test_plugin_commands_are_added(installed_plugin, minilm_dir):
    assert engine("embedding-size", "--model", minilm_dir).stdout.strip() == "384"


def test_python_pipeline_finds_the_plugin_task(installed_plugin, minilm_dir):
    embed = nlpengine.pipeline("sentence-embedding", model=minilm_dir, normalize=False)
    (vector,) = embed(["Hello there."])
    assert len(vector) == 384


def test_allowlist_limits_which_plugins_load(installed_plugin):
    only_ner = json.loads(engine("tasks", "--json", env={"NLPENGINE_LOAD_PLUGINS": "ner"}).stdout)
    assert [t["task"] for t in only_ner["tasks"]] == ["ner"]
    two = json.loads(
        engine("tasks", "--json", env={"NLPENGINE_LOAD_PLUGINS": "ner, sentence_embedding"}).stdout
    )
    assert {t["task"] for t in two["tasks"]} == {"ner", "sentence-embedding"}
    none = json.loads(engine("tasks", "--json", env={"NLPENGINE_LOAD_PLUGINS": ""}).stdout)
    assert none["tasks"] == []


def test_trace_shows_hook_calls_on_stderr():
    proc = engine("tasks", "--json", env={"NLPENGINE_TRACE_PLUGINS": "1"})
    assert "register_tasks" in proc.stderr
    json.loads(proc.stdout)  # tracing never mixes into the results


class _BrokenEntryPoint:
    name = "broken"
    value = "nlpengine_broken_plugin.plugin"
    dist = None

    def load(self):
        raise ImportError("No module named 'nlpengine_broken_plugin'")


def test_a_broken_plugin_is_reported_and_the_others_still_load(monkeypatch, capsys):
    real = plugins.metadata.entry_points

    def entry_points(group):
        return [*real(group=group), _BrokenEntryPoint()]

    monkeypatch.setattr(plugins.metadata, "entry_points", entry_points)
    registry = plugins.PluginRegistry()
    tasks = registry.tasks()
    assert {"ner", "classification"} <= set(tasks)
    assert [f.name for f in registry.failures] == ["broken"]
    assert "nlpengine_broken_plugin" in registry.failures[0].error
    assert "plugin 'broken' failed to load" in capsys.readouterr().err


def test_a_plugin_whose_hook_raises_is_reported(monkeypatch):
    class Faulty:
        @nlpengine.hookspecs.hookimpl
        def register_tasks(self, register):
            raise RuntimeError("bad registration")

    registry = plugins.PluginRegistry()
    registry.load()
    registry.manager.register(Faulty(), name="faulty")
    tasks = registry.tasks()
    assert "ner" in tasks
    assert any(f.name == "faulty" and "bad registration" in f.error for f in registry.failures)


def test_duplicate_task_names_are_rejected():
    class Duplicate:
        @nlpengine.hookspecs.hookimpl
        def register_tasks(self, register):
            register(
                TaskSpec(
                    name="ner",
                    description="again",
                    head="token_classification",
                    create_pipeline=lambda *a, **k: None,
                    to_input=lambda r, f: r,
                    to_output=lambda i, r: r,
                )
            )

    registry = plugins.PluginRegistry()
    registry.load()
    registry.manager.register(Duplicate(), name="duplicate")
    tasks = registry.tasks()
    assert tasks["ner"].plugin == "ner"
    assert any(f.name == "duplicate" and "already registered" in f.error for f in registry.failures)


def test_unknown_task_and_unknown_option_errors():
    with pytest.raises(LookupError, match="unknown task 'nope'.*ner"):
        nlpengine.pipeline("nope", model=".")
    spec = plugins.get_registry().task("ner")
    with pytest.raises(TypeError, match="no option.*colour"):
        spec.resolve_options({"colour": "red"})
