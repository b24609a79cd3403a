"""The README's and docs/findings.md's generated sections say what the committed results and benchmark JSON say:
none of their figures is typed by hand, and a changed source makes the check fail until the section is written
again. The README quotes no measured number outside them, is short, and says how to start on its first screen."""

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "readme_sections.py"


DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "findings.md")


def check(documents, results: Path, *extra) -> subprocess.CompletedProcess:
    command = [sys.executable, str(SCRIPT), "--check", "--documents", *map(str, documents), "--results", str(results)]
    return subprocess.run([*command, *extra], capture_output=True, text=True, timeout=120)


def test_the_generated_sections_match_the_committed_results():
    done = check(DOCUMENTS, ROOT / "benchmarks" / "results")
    assert done.returncode == 0, done.stdout + done.stderr


def outside_generated(text: str) -> str:
    """The README without its generated sections, code blocks and links' targets."""
    text = re.sub(r"<!-- generated: (\w+) -->.*?<!-- /generated: \1 -->", "", text, flags=re.S)
    text = re.sub(r"```.*?```", "", text, flags=re.S)
    return re.sub(r"\]\([^)]*\)", "]", text)


# Numbers the README may type: notebook numbers, settings, an exit code, a date; no measurement.
SETTINGS = {"01", "02", "03", "04", "05", "06", "1-64", "2,000", "10,000", "2", "2023"}


def test_the_readme_types_no_measured_number_is_short_and_starts_on_its_first_screen():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    prose = outside_generated(readme)
    numbers = set(re.findall(r"(?<![\w.-])\d(?:[\d,.\-x%]*\d)?(?![\w-])", prose))
    assert numbers <= SETTINGS, f"typed by hand, not generated: {sorted(numbers - SETTINGS)}"
    assert len(readme.split()) < 2000
    first_screen = "\n".join(readme.splitlines()[:40])
    assert "Colab" in first_screen and "pip install" in first_screen and "bertpeft run --profile quick" in first_screen


def test_a_changed_result_makes_the_check_fail_and_the_rewrite_quotes_it(tmp_path):
    results = tmp_path / "results"
    shutil.copytree(ROOT / "benchmarks" / "results", results)
    documents = [tmp_path / path.name for path in DOCUMENTS]
    for path, copy in zip(DOCUMENTS, documents, strict=True):
        shutil.copy(path, copy)
    path = results / "precision_parity-quick-cpu.json"
    parity = json.loads(path.read_text())
    full = next(s for s in parity["summary"] if s["config"] == "full")
    full["accuracy_bf16"] = 0.1234
    path.write_text(json.dumps(parity))
    done = check(documents, results)
    assert done.returncode == 1 and "findings.md section 'precision'" in done.stdout, done.stdout + done.stderr
    rewrite = [sys.executable, str(SCRIPT), "--documents", *map(str, documents), "--results", str(results)]
    subprocess.run(rewrite, check=True, capture_output=True, timeout=120)
    assert "| `full` | 0.9110 | 0.1234 |" in documents[1].read_text()
    assert check(documents, results).returncode == 0


def test_a_changed_reference_result_changes_the_readme_table(tmp_path):
    import pandas as pd

    table = pd.read_csv(ROOT / "reference" / "quick" / "results.csv")
    table.loc[table["config"] == "lora", "accuracy"] = 0.5
    reference = tmp_path / "results.csv"
    table.to_csv(reference, index=False)
    done = check(DOCUMENTS, ROOT / "benchmarks" / "results", "--reference", str(reference))
    assert done.returncode == 1 and "README.md section 'headline'" in done.stdout, done.stdout + done.stderr


def test_the_committed_reference_results_recompute_from_their_per_review_predictions(tmp_path):
    """Every accuracy of the committed reference run follows from the predictions it commits, results.csv says the
    same, and an edited result JSON makes the findings' reference section stale."""
    import pandas as pd

    folder = ROOT / "reference" / "quick"
    results = sorted((folder / "results").glob("*.json"))
    table = pd.read_csv(folder / "results.csv").set_index(["config", "seed"])
    assert len(results) == len(table) >= 18  # six configurations, three seeds
    for path in results:
        result = json.loads(path.read_text(encoding="utf-8"))
        predictions, labels = result["test_predictions"], result["test_labels"]
        assert len(predictions) == len(labels) == len(result["test_probabilities"]) == result["run_config"]["n_test"]
        accuracy = sum(p == y for p, y in zip(predictions, labels, strict=True)) / len(labels)
        assert accuracy == pytest.approx(result["accuracy"], abs=1e-12), path.name
        assert table.loc[(result["config"], result["seed"]), "accuracy"] == pytest.approx(accuracy, abs=1e-12), (
            path.name
        )
    copy = tmp_path / "quick"
    shutil.copytree(folder, copy)
    edited = copy / "results" / results[-1].name
    result = json.loads(edited.read_text(encoding="utf-8"))
    result["test_predictions"] = [1 - p for p in result["test_predictions"]]
    edited.write_text(json.dumps(result), encoding="utf-8")
    done = check(DOCUMENTS, ROOT / "benchmarks" / "results", "--reference", str(copy / "results.csv"))
    assert done.returncode == 1 and "findings.md section 'reference'" in done.stdout, done.stdout + done.stderr
