"""What the notebooks share: the settings a notebook runs with, and showing them briefly."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
from pathlib import Path
from typing import Any

from .config import PROFILES, ConfigError, RunConfig, profile_config
from .data import published_data_name
from .device import default_profile
from .layout import RunDir


def notebook_config(
    output: str | Path | None = None,
    profile: str | None = None,
    settings: dict[str, Any] | None = None,
    create: bool = True,
    **this_notebook: Any,
) -> RunConfig:
    """The settings a notebook runs with.

    A run folder holds one set of settings (`run_config.json`, written by `bertpeft run` or by the first notebook
    run by hand), and every notebook reads them from there, so the notebooks of one run cannot disagree. Without
    one, they are `profile` (default: `paper` on a CUDA GPU, else `quick`) with `settings` applied, saved for the
    next notebooks (unless `create` is False: notebooks that only read a run do not start one). `settings` that differ from the folder's are refused (use another `output`); `this_notebook`
    (e.g. the configuration and seed one run of notebook 02 trains) is applied on top.
    """
    quiet_notebook()
    check_injected_parameters()
    check_notebook_arguments(output, profile, settings)
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    if output is None:
        output = profile_config(profile or default_profile(), **settings).output
    layout = RunDir(output)
    saved = layout.read_config()
    this_notebook = {k: v for k, v in this_notebook.items() if v is not None}
    if saved is None:
        config = profile_config(profile or default_profile(), **settings, output=str(output))
    else:
        asked = {**({"profile": profile} if profile else {}), **settings}
        wanted = RunConfig.from_dict({**saved.to_dict(), **asked})  # an unknown setting is named
        differ = [k for k in asked if getattr(wanted, k) != getattr(saved, k)]
        if not differ:
            return saved.replace(output=str(output), **this_notebook)
        diff = ", ".join(f"{k} {getattr(saved, k)!r} -> {getattr(wanted, k)!r}" for k in differ)
        if any(layout.results.glob("*.json")):
            raise ConfigError(
                f"{output} holds a run made with other settings ({diff}): pass another output, or remove "
                f"{layout.run_config} to start over"
            )
        # a run that made no result (it failed or was stopped early) does not bind the next one
        print(f"{output} held settings of a run that made no result; now: {diff}")
        config = wanted.replace(output=str(output))
    config.replace(**this_notebook)  # checked before the run folder is started
    if create:
        layout.write_config(config)
    return config.replace(**this_notebook)


def start_afresh() -> None:
    """Ready this IPython kernel for the next notebook of a series, as a new kernel would be: an empty namespace, a
    new history session (cells numbered from 1, papermill's parameter cells found anew), the memory of what the
    last notebook built given back. The modules it imported stay loaded, which is the point (`series.SharedKernel`).
    Runs inside the kernel, silently, binding no name."""
    import gc

    get_ipython().reset(new_session=True)  # noqa: F821 - defined inside IPython only
    gc.collect()
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def assigned_names(source: str) -> list[str]:
    """The names a cell's source assigns at its top level, in order."""
    import ast

    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    names = []
    for node in tree.body:
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AnnAssign) else []
        )
        names += [t.id for t in targets if isinstance(t, ast.Name)]
    return names


def check_injected_parameters(history: list[str] | None = None) -> None:
    """Refuse a parameter papermill was given that the notebook does not declare (papermill itself only warns, and
    the notebook would run with its default): papermill executes its "# Parameters" cell right after the notebook's
    parameters cell, so the kernel's input history holds both. `history`: the cells run so far (default: this
    IPython kernel's); outside papermill there is no such cell and nothing to check."""
    if history is None:
        try:
            history = list(get_ipython().user_ns.get("In", []))  # noqa: F821 - defined inside IPython only
        except NameError:
            return
    injected = [i for i, cell in enumerate(history) if cell.lstrip().startswith("# Parameters") and i > 0]
    if not injected:
        return
    at = injected[-1]
    declared = assigned_names(history[at - 1])
    unknown = [name for name in assigned_names(history[at]) if name not in declared]
    if unknown and declared:
        raise ConfigError(
            f"this notebook has no parameter {', '.join(unknown)}: its parameters are {', '.join(declared)} (a run "
            f"setting such as n_train goes into settings, e.g. -y 'settings: {{n_train: 500}}')"
        )


def check_notebook_arguments(output: Any, profile: Any, settings: Any) -> None:
    """Papermill passes parameters of any type (YAML, JSON): the ones that are not run settings are checked here,
    the settings by `RunConfig` itself."""
    if output is not None and not (isinstance(output, (str, Path)) and str(output).strip()):
        raise ConfigError(f"output must be a run folder's path, e.g. 'runs/quick', or None; got {output!r}")
    if profile is not None and not isinstance(profile, str):
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, or None; got {profile!r}")
    if settings is not None and not isinstance(settings, dict):
        raise ConfigError(f'settings must be a dict of run settings, e.g. {{"n_train": 500}}; got {settings!r}')
    unnamed = [k for k in settings or {} if not isinstance(k, str)]
    if unnamed:
        raise ConfigError(f"settings are named by text, e.g. {{'n_train': 500}}; got the key(s) {unnamed!r}")


class _ImportQuietly:
    """A finder that runs one module's import with its stdout swallowed, whenever something first imports it."""

    def __init__(self, name: str):
        self.name = name

    def find_spec(self, name, path=None, target=None):
        if name != self.name:
            return None
        sys.meta_path.remove(self)  # once, and without finding itself again
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            exec_module = spec.loader.exec_module

            def quietly(module):
                with contextlib.redirect_stdout(io.StringIO()):
                    exec_module(module)

            spec.loader.exec_module = quietly
        return spec


WANDB_LINE_MODULE = "transformers.integrations.integration_utils"  # prints a line at import under WANDB_MODE=offline


def quiet_notebook() -> None:
    """Keep a notebook's outputs to what it is about, without importing anything it may not need. The per-file
    progress bars of huggingface_hub, transformers and datasets (loading weights, writing shards, tokenizing, saving:
    each well under a second here) are turned off (set before they are imported, as they read it then; turned off in
    those already imported); the training's own progress stays. transformers prints "[INFO] Running in WANDB offline
    mode" on importing its integrations whenever WANDB_MODE=offline is set, also for runs that do not report to W&B:
    that import, whenever it comes, has the line swallowed (W&B's own messages, for runs that use it, are untouched)."""
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
    if "huggingface_hub" in sys.modules:
        from huggingface_hub.utils import disable_progress_bars

        disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
    if "datasets" in sys.modules:
        import datasets

        datasets.disable_progress_bars()
    quiet = os.environ.get("WANDB_MODE") == "offline" and WANDB_LINE_MODULE not in sys.modules
    if quiet and not any(isinstance(f, _ImportQuietly) for f in sys.meta_path):
        sys.meta_path.insert(0, _ImportQuietly(WANDB_LINE_MODULE))


# The settings a reader needs to place a notebook's outputs; the run folder's run_config.json holds them all.
SHOWN_SETTINGS = ("profile", "model", "data", "n_train", "n_validation", "n_test", "max_length", "output")


def show_config(config: RunConfig, names=SHOWN_SETTINGS) -> None:
    """One line with the settings that matter for reading the outputs below."""
    shown = {name: getattr(config, name) for name in names}
    if "data" in shown:  # a local folder by its name: its path on the machine that ran it means nothing to a reader
        shown["data"] = published_data_name(config.data)
    print(", ".join(f"{name} {value}" for name, value in shown.items()))


STORIES = {
    "smoke": "profile smoke: a tiny random BERT on made-up reviews, to show the mechanics in seconds (its accuracy "
    "means nothing)",
    "quick": "profile quick: Experiment A's comparison on all-MiniLM-L6-v2 (a 6-layer BERT) with real reviews, sized "
    "for a CPU",
    "methods": "profile methods: the parameter-efficient methods compared on all-MiniLM-L6-v2 (a 6-layer BERT) with "
    "real reviews, quick's setting, three seeds",
    "paper": "profile paper: Experiment A's setup (bert-base-cased, 10,000 training and 2,000 test reviews of Yelp "
    "polarity)",
    "experiment-b": "profile experiment-b: Experiment B's setup (nlptown's 5-star BERT, LoRA r=16 on 1,000 five-class "
    "Yelp reviews)",
}


def run_story(config: RunConfig) -> str:
    """Which experiment a run's outputs come from, in one line."""
    defaults = profile_config(config.profile)
    if (config.model, config.data) != (defaults.model, defaults.data):  # the profile's words would describe other data
        return (
            f"These outputs come from profile {config.profile}'s settings with model {config.model} on data "
            f"{published_data_name(config.data)} ({config.n_train:,} training and {config.n_test:,} test reviews)."
        )
    story = STORIES.get(config.profile, f"profile {config.profile}")
    return f"These outputs come from {story}; model {config.model}, data {published_data_name(config.data)}."


def show_source(*functions):
    """The source of `functions` as a Python listing, where a notebook then calls them: the code that runs, shown
    rather than copied beside it."""
    import inspect

    from IPython.display import Markdown

    listing = "\n\n".join(inspect.getsource(f).rstrip() for f in functions)
    return Markdown(f"```python\n{listing}\n```")


def constructor_call(settings, always=()) -> str:
    """A peft config (or any dataclass) as the call that builds it: its class and the fields that differ from the
    class's defaults or are named in `always`, e.g. `LoraConfig(task_type='SEQ_CLS', r=4, lora_alpha=8, ...)`.
    peft's own bookkeeping (`peft_type`, `peft_version`, which the class fills in) is left out."""
    import dataclasses

    given = []
    for field in dataclasses.fields(settings):
        if not field.init or field.name in ("peft_type", "peft_version"):
            continue
        value = getattr(settings, field.name)
        if field.default is not dataclasses.MISSING:
            default = field.default
        elif field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = dataclasses.MISSING
        if value != default or field.name in always:
            value = sorted(value) if isinstance(value, set) else value  # peft keeps target_modules as a set
            value = getattr(value, "value", value)  # an enum (TaskType.SEQ_CLS) as the string it stands for
            given.append(f"{field.name}={value!r}")
    return f"{type(settings).__name__}({', '.join(given)})"
