"""Weights & Biases tracking as Experiment A uses it, made safe to run anywhere.

Settings come from a `.env` file (python-dotenv; see `.env.example`): WANDB_API_KEY, WANDB_PROJECT,
WANDB_LOG_MODEL and WANDB_MODE (which replaces the deprecated WANDB_DISABLED). With no key and no mode, runs go
offline, said in one line: never a login prompt, never a hang, also with no terminal.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_PROJECT = "bertpeft"


def load_env(path: str | Path | None = None) -> bool:
    """Read `.env` (from `path`, else the working folder and its parents) without overriding set variables."""
    from dotenv import find_dotenv, load_dotenv

    found = str(path) if path else find_dotenv(usecwd=True)
    return bool(found) and load_dotenv(found, override=False)


def _has_key() -> bool:
    if os.environ.get("WANDB_API_KEY"):
        return True
    netrc = Path.home() / ".netrc"
    return netrc.exists() and "api.wandb.ai" in netrc.read_text(errors="ignore")


_wandb_dir_set_here: str | None = None  # the WANDB_DIR this module chose, told apart from one the user set


def _remember_wandb_dir(folder: str) -> None:
    global _wandb_dir_set_here
    os.environ["WANDB_DIR"] = _wandb_dir_set_here = folder


def setup_wandb(report_to: str, run_dir: str | Path | None = None) -> list[str]:
    """Prepare the environment for the Trainer's W&B integration; returns the Trainer's `report_to` list."""
    if report_to != "wandb":
        return []
    load_env()
    os.environ.setdefault("WANDB_PROJECT", DEFAULT_PROJECT)
    os.environ.setdefault("WANDB_SILENT", "true")
    os.environ.setdefault("WANDB_CONSOLE", "off")  # keeps the key-free console log out of notebooks
    if run_dir is not None and os.environ.get("WANDB_DIR") in (None, _wandb_dir_set_here):
        # W&B files go into this run's folder, unless the user chose a folder: a second run in the same process
        # (a notebook kernel, the tests) must not write into the first run's folder.
        _remember_wandb_dir(str(Path(run_dir).resolve()))
    if os.environ.get("WANDB_DIR"):
        Path(os.environ["WANDB_DIR"]).mkdir(parents=True, exist_ok=True)
    if os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true", "yes"):
        print("W&B: WANDB_DISABLED is deprecated; use WANDB_MODE=disabled. Tracking is off.")
        os.environ["WANDB_MODE"] = "disabled"
    if not os.environ.get("WANDB_MODE") and not _has_key():
        os.environ["WANDB_MODE"] = "offline"
        print("W&B: no WANDB_API_KEY found, logging offline (sync later with `wandb sync`).")
    elif os.environ.get("WANDB_MODE") == "online" and not _has_key():
        os.environ["WANDB_MODE"] = "offline"
        print("W&B: WANDB_MODE=online but no WANDB_API_KEY, logging offline instead of asking for a login.")
    return ["wandb"]


def finish_wandb() -> None:
    """Close the current W&B run, if one is open, so the next configuration starts its own."""
    try:
        import wandb
    except ImportError:
        return
    if wandb.run is not None:
        wandb.finish()
