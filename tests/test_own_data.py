"""A user's own reviews, as users have them: a TSV with other column names and text labels trains through `bertpeft
train`, and the exported model's `pipeline` speaks the user's label names."""

import json
import random

import pytest
from conftest import run_bertpeft

WORDS = {"neg": ("cold", "rude", "slow", "dirty", "bland"), "pos": ("warm", "kind", "quick", "clean", "tasty")}


def made_up_reviews(n: int, seed: int) -> list[tuple[str, str]]:
    """Made-up two-class reviews (text labels), a few words each."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        label = ("neg", "pos")[i % 2]
        rows.append((" ".join(rng.choice(WORDS[label]) for _ in range(6)) + f" visit {i}", label))
    return rows


@pytest.mark.slow
def test_a_tsv_with_text_labels_and_its_own_column_names_runs_end_to_end(tmp_path):
    data = tmp_path / "my-reviews"
    data.mkdir()
    for split, n, seed in (("train", 160, 1), ("test", 60, 2)):
        lines = ["comment\tverdict\tshop"] + [
            f"{text}\t{label}\tshop {i}" for i, (text, label) in enumerate(made_up_reviews(n, seed))
        ]
        (data / f"{split}.tsv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    out = tmp_path / "run"
    args = ("train", "--profile", "smoke", "--config", "lora", "--data", data, "--output", out)
    refused = run_bertpeft(*args)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "has no text column (looked for text, sentence" in refused.stderr and "--text-column NAME" in refused.stderr
    assert not (out / "results").exists()

    named = ("--text-column", "comment", "--label-column", "verdict")
    done = run_bertpeft(*args, *named, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "results" / "lora-seed42.json").read_text())
    assert result["id2label"] == {"0": "neg", "1": "pos"}
    assert result["run_config"]["text_column"] == "comment"
    exported = run_bertpeft("export", "--output", out, timeout=600)
    assert exported.returncode == 0, exported.stdout[-3000:] + exported.stderr[-3000:]

    from transformers import pipeline

    classify = pipeline("text-classification", model=str(out / "export" / "lora-merged"), device="cpu")
    said = classify(["cold rude slow visit", "warm kind tasty visit"])
    assert {s["label"] for s in said} <= {"neg", "pos"}, said
