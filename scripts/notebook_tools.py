"""Helpers to write the numbered source notebooks (no outputs) with the house template:
title + Colab badge, one setup cell, a tagged `parameters` cell, then numbered sections."""

from __future__ import annotations

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

REPO = "bertpeft/bertpeft"  # GitHub owner/name used by the Colab badge and the Colab install cell

SETUP = f"""# Setup: on Colab (or anywhere bertpeft is missing) install it; elsewhere this does nothing.
import importlib.util
import subprocess
import sys

if importlib.util.find_spec("bertpeft") is None:
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "bertpeft[minilm] @ git+https://github.com/{REPO}"], check=True)"""


def badge(name: str) -> str:
    return (
        f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
        f"(https://colab.research.google.com/github/{REPO}/blob/main/notebooks/{name})"
    )


def md(text: str):
    return new_markdown_cell(text.strip("\n"))


def code(text: str, tags: list[str] | None = None):
    cell = new_code_cell(text.strip("\n"))
    if tags:
        cell.metadata["tags"] = tags
    return cell


def write_notebook(path: str, title: str, intro: str, parameters: str, cells: list) -> None:
    name = path.rsplit("/", 1)[-1]
    nb = new_notebook(
        cells=[
            md(f"# {title}\n\n{badge(name)}\n\n{intro.strip()}"),
            code(SETUP),
            md(
                "## Parameters\nPapermill overrides this cell (`papermill --help-notebook` lists "
                "them). `None` keeps the profile's value."
            ),
            code(parameters, tags=["parameters"]),
            *cells,
        ]
    )
    for i, cell in enumerate(nb.cells):  # stable ids: regenerating an unchanged notebook leaves git clean
        cell.id = f"cell-{i:02d}"
    nb.metadata = {
        "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
        "language_info": {"name": "python"},
    }
    nbformat.write(nb, path)
