"""Packaging and notebook hygiene: the two dependency lists agree, source notebooks are clean, lint passes."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LINTED = ("bertpeft", "tests", "scripts", "benchmarks", "notebooks")
SOURCE_NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def pyproject():
    try:
        import tomllib
    except ImportError:  # Python 3.10
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))


def names(requirements):
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def pins(requirements):
    return {canonicalize_name(Requirement(r).name): Requirement(r).specifier for r in requirements}


def test_environment_yml_lists_the_same_packages_as_pyproject():
    yaml = pytest.importorskip("yaml")
    project = pyproject()["project"]
    extras = project["optional-dependencies"]
    declared = names(project["dependencies"]) | names(extras["minilm"]) | names(extras["run"])
    environment = yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))
    pip = next(item["pip"] for item in environment["dependencies"] if isinstance(item, dict) and "pip" in item)
    conda = [item for item in environment["dependencies"] if isinstance(item, str)]
    listed = names(r for r in pip if not r.startswith("-e")) | names(
        c.split("=")[0] for c in conda if c.split("=")[0] not in ("python", "pip")
    )
    assert listed == declared, f"only in environment.yml: {listed - declared}; only in pyproject: {declared - listed}"
    assert "-e ." in pip, "environment.yml installs bertpeft itself"
    wanted = pins([*project["dependencies"], *extras["minilm"], *extras["run"]])
    given = pins(r for r in pip if not r.startswith("-e"))
    assert {n: str(s) for n, s in given.items()} == {n: str(wanted[n]) for n in given}, "versions differ"


IMPORT_NAMES = {"scikit-learn": "sklearn", "python-dotenv": "dotenv", "adjusttext": "adjustText"}  # the import differs


def test_every_declared_dependency_is_imported_by_the_package_or_a_notebook():
    import re

    code = "\n".join(
        p.read_text(encoding="utf-8") for p in [*ROOT.glob("bertpeft/**/*.py"), *ROOT.glob("notebooks/*.py")]
    )
    imported = set(re.findall(r"^\s*(?:from|import)\s+([A-Za-z_][A-Za-z0-9_]*)", code, re.M))
    unused = [
        n
        for n in names(pyproject()["project"]["dependencies"])
        if IMPORT_NAMES.get(n, n.replace("-", "_")) not in imported
    ]
    assert unused == [], f"declared but never imported: {unused}"


def test_pyproject_declares_the_console_script_and_extras():
    project = pyproject()["project"]
    assert project["scripts"]["bertpeft"] == "bertpeft.cli:main"
    assert {"dev", "minilm"} <= set(project["optional-dependencies"])
    assert {"pytest", "ruff"} <= names(project["optional-dependencies"]["dev"])
    required = {
        "transformers",
        "datasets",
        "peft",
        "accelerate",
        "torch",
        "wandb",
        "matplotlib",
        "pandas",
        "ipywidgets",
        "scikit-learn",
        "python-dotenv",
    }
    assert required <= names(project["dependencies"])
    # A Jupyter or Colab kernel pins its own: installing bertpeft must not upgrade them; `bertpeft run` needs them.
    kernel = {"papermill", "ipykernel", "nbformat"}
    assert not kernel & names(project["dependencies"])
    assert kernel <= names(project["optional-dependencies"]["run"])


def test_smoke_fixture_ships_with_the_package():
    includes = pyproject()["tool"]["setuptools"]["package-data"]["bertpeft"]
    assert any(pattern.startswith("resources/smoke") for pattern in includes)
    assert {"train.csv", "test.csv", "vocab.txt"} <= {p.name for p in (ROOT / "bertpeft/resources/smoke").iterdir()}


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.name)
def test_each_notebook_is_paired_with_its_text_source_and_in_step(path):
    """notebooks/NN_name.py (jupytext py:percent) is the source; the .ipynb beside it must hold the same cells.
    After editing the .py: `jupytext --sync notebooks/*.py`."""
    import jupytext

    source = path.with_suffix(".py")
    assert source.exists(), f"{source.name} missing: the text source of {path.name}"
    text, ipynb = jupytext.read(source), jupytext.read(path)
    assert len(text.cells) == len(ipynb.cells), f"{path.name} is out of step with {source.name}: run jupytext --sync"
    for i, (a, b) in enumerate(zip(text.cells, ipynb.cells)):
        assert (a.cell_type, a.source) == (b.cell_type, b.source), f"cell {i} of {path.name} differs from {source.name}"
        assert a.metadata.get("tags", []) == b.metadata.get("tags", []), f"cell {i} tags differ"


def test_the_notebooks_ship_inside_the_package():
    setuptools = pyproject()["tool"]["setuptools"]
    assert setuptools["package-dir"]["bertpeft.notebooks"] == "notebooks"
    assert "bertpeft.notebooks" in setuptools["packages"]
    assert "*.ipynb" in setuptools["package-data"]["bertpeft.notebooks"]


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.name)
def test_source_notebooks_carry_no_outputs(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    code = [cell for cell in notebook["cells"] if cell["cell_type"] == "code"]
    assert code
    assert [i for i, cell in enumerate(code) if cell.get("outputs")] == [], "strip outputs before committing"
    assert [i for i, cell in enumerate(code) if cell.get("execution_count") is not None] == []


def parameters_cell(path):
    notebook = json.loads(path.read_text(encoding="utf-8"))
    tagged = [cell for cell in notebook["cells"] if "parameters" in cell.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged 'parameters'"
    assert tagged[0]["cell_type"] == "code"
    return "".join(tagged[0]["source"])


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.name)
def test_parameters_cell_holds_literal_assignments_only(path):
    source = parameters_cell(path)
    statements = ast.parse(source).body
    assert statements
    for statement in statements:
        assert isinstance(statement, ast.Assign), ast.unparse(statement)
        assert len(statement.targets) == 1 and isinstance(statement.targets[0], ast.Name), ast.unparse(statement)
        ast.literal_eval(statement.value)  # raises on anything but a literal
    lines = [line for line in source.splitlines() if line.strip()]
    assert len(lines) == len(statements), "one parameter per line"
    assert all("#" in line for line in lines), "each parameter has a comment saying its type and meaning"


@pytest.mark.parametrize("path", SOURCE_NOTEBOOKS, ids=lambda p: p.name)
def test_papermill_documents_every_parameter(path):
    import papermill

    parameters = papermill.inspect_notebook(str(path))
    assert set(parameters) == {t.targets[0].id for t in ast.parse(parameters_cell(path)).body}
    assert all(p["help"] for p in parameters.values()), "papermill --help-notebook shows each comment"


def test_dot_env_is_ignored_and_documented():
    assert ".env" in (ROOT / ".gitignore").read_text().split()
    example = (ROOT / ".env.example").read_text()
    for key in ("WANDB_API_KEY", "WANDB_PROJECT", "WANDB_LOG_MODEL", "WANDB_MODE"):
        assert f"{key}=" in example


def test_ruff_passes():
    command = [sys.executable, "-m", "ruff", "check", "--output-format", "concise", *LINTED]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-4000:]


def test_code_is_formatted_by_ruff():
    """One formatter for the Python code, the notebooks' py:percent sources and their .ipynb pairs included."""
    command = [sys.executable, "-m", "ruff", "format", "--check", *LINTED]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"run `ruff format {' '.join(LINTED)}`:\n{done.stdout[-2000:]}"


def test_committed_files_quote_no_review_of_the_local_data(shared_data):
    """../shared/data may be read, never copied into the project: no rendered notebook, figure table or benchmark
    JSON holds a review from it (a reference run uses `bertpeft run --no-quotes`)."""
    import html

    import pandas as pd

    reviews = pd.concat([pd.read_csv(path) for path in shared_data.glob("*/*.csv")])["text"]
    # 40 characters: pandas cuts a long text cell to 50 in a notebook's plain-text output
    openings = {o[:40] for o in (" ".join(str(text).split()) for text in reviews) if len(o) >= 40}
    committed = subprocess.run(
        ["git", "ls-files", "rendered", "figures", "reference", "benchmarks", "README.md", "docs"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert committed, "git ls-files found nothing: is this a checkout?"
    for name in committed:
        if not name.endswith((".ipynb", ".json", ".csv", ".md")):
            continue
        text = (ROOT / name).read_text(encoding="utf-8")
        # undo JSON's escapes (newline, quote) and HTML's, so an output cell reads as the text it shows
        flat = html.unescape(" ".join(text.replace("\\n", " ").replace('\\"', '"').split()))
        quoted = [o for o in openings if o in flat]
        assert not quoted, f"{name} quotes {len(quoted)} review(s) of the local data, e.g. {quoted[0]!r}"


def test_colab_badges_and_install_cells_use_the_repository_in_pyproject():
    """One home for the repository's address: `python scripts/set_repository.py` writes it into the notebooks."""
    import re

    repo = re.sub(r"^https://github\.com/|/$", "", pyproject()["project"]["urls"]["Repository"])
    for source in sorted((ROOT / "notebooks").glob("*.py")):
        text = source.read_text(encoding="utf-8")
        badges = re.findall(
            r"colab\.research\.google\.com/github/([\w.-]+/[\w.-]+)/blob/main/notebooks/([\w.-]+)", text
        )
        installs = re.findall(r"git\+https://github\.com/([\w.-]+/[\w.-]+?)[\"']", text)
        assert badges == [(repo, f"{source.stem}.ipynb")], (source.name, badges)
        assert installs == [repo], (source.name, installs)
