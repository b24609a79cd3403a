"""The configuration registry (bertpeft/configurations.py) as the one home of a configuration: an entry added there,
and nowhere else, is offered by the command line, trained, tabled, drawn and exported by `bertpeft run`."""

import csv
import json
import os
import re
import shutil
from pathlib import Path

import pytest
from conftest import run_bertpeft

from bertpeft.configurations import ENTRIES, FAMILIES, REGISTRY, display_order, entry

ROOT = Path(__file__).resolve().parents[1]
THROWAWAY = "lora-qkv"
# One registry entry, appended to a copy of the package: LoRA on the key projection as well as query and value.
ENTRY = f'''
ENTRIES += (
    _peft(
        "{THROWAWAY}", "LoRA on query, key and value", 1e-3, "LoraConfig", "LORA",
        lambda i: _lora(i) | {{"target_modules": [*i.targets, "key"]}}, _lora_words("LoRA on query, key and value"),
    ),
)  # fmt: skip
'''


@pytest.fixture(scope="module")
def with_throwaway(tmp_path_factory):
    """A copy of the package whose registry holds one more entry (no other file changed), and the arguments that
    make `python -m bertpeft` import it instead of the installed one (its folder first on the path, and the
    working directory elsewhere than the checkout, which `-m` would put before it)."""
    folder = tmp_path_factory.mktemp("registry")
    package = folder / "bertpeft"
    shutil.copytree(ROOT / "bertpeft", package, ignore=shutil.ignore_patterns("__pycache__"))
    registry = package / "configurations.py"
    anchor = "REGISTRY = {c.name: c for c in ENTRIES}"
    text = registry.read_text(encoding="utf-8")
    assert text.count(anchor) == 1
    registry.write_text(text.replace(anchor, ENTRY + anchor), encoding="utf-8")
    changed = [
        p.relative_to(package)
        for p in package.rglob("*.py")
        if p.read_bytes() != (ROOT / "bertpeft" / p.relative_to(package)).read_bytes()
    ]
    assert changed == [Path("configurations.py")]
    env = {**os.environ, "PYTHONPATH": str(folder), "BERTPEFT_NOTEBOOKS": str(ROOT / "notebooks")}
    env["OMP_NUM_THREADS"] = "1"  # a tiny model is fastest on one thread
    return {"env": env, "cwd": folder}


def test_the_added_entry_is_counted_by_the_copy_that_runs(with_throwaway):
    done = run_bertpeft("params", "--model", "tiny-random-bert", "--configs", f"lora,{THROWAWAY}", **with_throwaway)
    assert done.returncode == 0, done.stderr
    counts = {
        line.split(":")[0].strip(): int(re.search(r"trainable params: ([\d,]+)", line)[1].replace(",", ""))
        for line in done.stdout.splitlines()
    }
    head = 2 * 32 + 2  # the tiny model's 2-label classifier, trained beside both
    # LoRA on the key projection as well as on query and value: half as many adapter weights again
    assert counts[THROWAWAY] - head == 1.5 * (counts["lora"] - head), done.stdout


def test_a_configuration_unknown_to_the_installed_registry_is_refused_in_one_line(tmp_path):
    done = run_bertpeft("train", "--profile", "smoke", "--config", THROWAWAY, "--output", tmp_path / "run")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert f"unknown configuration '{THROWAWAY}'" in done.stderr and not (tmp_path / "run").exists()


@pytest.mark.slow
def test_an_entry_added_to_the_registry_alone_is_offered_trained_tabled_drawn_and_exported(with_throwaway, tmp_path):
    offered = run_bertpeft(
        "train", "--profile", "smoke", "--config", "nope", "--output", tmp_path / "x", **with_throwaway
    )
    assert offered.returncode == 2 and THROWAWAY in offered.stderr  # named among the choices

    run = tmp_path / "run"
    done = run_bertpeft("run", "--profile", "smoke", "--configs", THROWAWAY, "--output", run, **with_throwaway)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads((run / "results" / f"{THROWAWAY}-seed42.json").read_text(encoding="utf-8"))
    assert result["config"] == THROWAWAY and result["train_steps"] > 0 and result["trainable_params"] > 0
    with (run / "results.csv").open(encoding="utf-8") as table:
        assert [row["config"] for row in csv.DictReader(table)] == [THROWAWAY]
    results = json.loads((run / "notebooks" / "04_results.ipynb").read_text(encoding="utf-8"))
    shown = [json.dumps(o) for c in results["cells"] for o in c.get("outputs", [])]
    assert sum(THROWAWAY in o for o in shown) >= 3  # the results table, the summary and the findings
    figures = {p.stem for p in (run / "figures").glob("*.png")}
    assert {
        "metrics_per_configuration",
        "accuracy_vs_trainable_parameters",
        "methods_accuracy_vs_parameters",
    } <= figures
    card = (run / "export" / f"{THROWAWAY}-adapter" / "README.md").read_text(encoding="utf-8")
    assert "LoRA on query, key and value" in card  # the entry's own words, through the export notebook 06 made
    verification = json.loads((run / "export" / f"verification-{THROWAWAY}.json").read_text(encoding="utf-8"))
    assert verification["passed"]


def test_every_entry_has_a_family_and_a_place_in_the_display_order():
    assert {c.family for c in ENTRIES} <= set(FAMILIES)
    names = [c.name for c in ENTRIES] + ["head+1", "head+2", "lora-r1", "lora-r64"]
    order = sorted(names, key=lambda n: display_order(n, 4))
    assert order[0] == "none" and order[-1] == "full"
    assert order.index("head") < order.index("head+1") < order.index("head+2") < order.index("bitfit")
    assert order.index("lora-r1") < order.index("lora") < order.index("lora-r64") < order.index("dora")
    assert all(entry(n) is not None for n in names) and set(REGISTRY) == {c.name for c in ENTRIES}
