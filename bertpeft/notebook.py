"""What the notebooks share: the settings a notebook runs with, and showing them briefly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .config import ConfigError, RunConfig, profile_config
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
    settings = {k: v for k, v in (settings or {}).items() if v is not None}
    if output is None:
        output = profile_config(profile or default_profile(), **settings).output
    layout = RunDir(output)
    saved = layout.read_config()
    if saved is None:
        config = profile_config(profile or default_profile(), **settings, output=str(output))
        if create:
            layout.write_config(config)
    else:
        asked = {**({"profile": profile} if profile else {}), **settings}
        wanted = saved.replace(**asked)
        differ = [k for k in asked if getattr(wanted, k) != getattr(saved, k)]
        if differ:
            diff = ", ".join(f"{k} {getattr(saved, k)!r} -> {getattr(wanted, k)!r}" for k in differ)
            raise ConfigError(
                f"{output} holds a run made with other settings ({diff}): pass another output, or remove "
                f"{layout.run_config} to start over"
            )
        config = saved.replace(output=str(output))
    return config.replace(**{k: v for k, v in this_notebook.items() if v is not None})


# The settings a reader needs to place a notebook's outputs; the run folder's run_config.json holds them all.
SHOWN_SETTINGS = ("profile", "model", "data", "n_train", "n_test", "max_length", "configuration", "seed", "output")


def show_config(config: RunConfig, names=SHOWN_SETTINGS) -> None:
    """One line with the settings that matter for reading the outputs below."""
    print(", ".join(f"{name} {getattr(config, name)}" for name in names))
