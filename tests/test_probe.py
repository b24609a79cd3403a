"""embeddings+logreg: a logistic regression (scikit-learn) on the frozen encoder's mean-pooled embeddings, written
into a linear layer so the model answers like every other configuration's. What a user relies on: the linear layer
gives the regression's own probabilities, C is chosen on the validation reviews and never on the test reviews, the
command trains it and the independent benchmark agrees, the saved weights reload to the same predictions, and the
export refuses it in one line."""

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import run_bertpeft

from bertpeft import profile_config
from bertpeft.probe import C_GRID, fit_logistic_regression, fold_into_linear


@pytest.mark.parametrize("num_labels", [2, 5])
def test_the_folded_linear_layer_gives_the_regressions_probabilities(num_labels):
    import torch

    rng = np.random.default_rng(0)
    x = rng.normal(loc=3.0, scale=[0.1 * (i + 1) for i in range(12)], size=(300, 12))  # uncentred, unequal scales
    y = (x[:, 0] * 7 + x[:, 1] * 3 + rng.normal(size=300) > np.median(x[:, 0] * 7 + x[:, 1] * 3)).astype(int)
    if num_labels == 5:
        y = np.digitize(x @ rng.normal(size=12), np.quantile(x @ rng.normal(size=12), [0.2, 0.4, 0.6, 0.8]))
        y = np.clip(y, 0, 4)
    pipeline = fit_logistic_regression(x, y, 1.0)
    linear = torch.nn.Linear(12, num_labels).double()
    fold_into_linear(pipeline, linear, num_labels)
    with torch.no_grad():
        probabilities = torch.softmax(linear(torch.as_tensor(x)), -1).numpy()
    expected = np.zeros((len(x), num_labels))
    expected[:, pipeline.classes_] = pipeline.predict_proba(x)
    assert np.abs(probabilities - expected).max() < 1e-9
    assert (probabilities.argmax(-1) == pipeline.predict(x)).all()


def result_of(folder: Path) -> dict:
    (path,) = (folder / "results").glob("embeddings+logreg-seed*.json")
    return json.loads(path.read_text())


def test_bertpeft_train_fits_it_chooses_c_on_validation_and_the_saved_weights_reload(tmp_path):
    from transformers import AutoConfig

    from bertpeft.benchmark import PerformanceBenchmark
    from bertpeft.data import load_prepared
    from bertpeft.models import load_tokenizer, load_trained_model, resolve_model_source

    run = tmp_path / "run"
    done = run_bertpeft("train", "--profile", "smoke", "--config", "embeddings+logreg", "--output", run)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "chosen on the validation split" in done.stdout
    result = result_of(run)
    hidden = AutoConfig.from_pretrained(resolve_model_source("tiny-random-bert")).hidden_size
    assert result["trainable_params"] == hidden * 2 + 2  # one weight row and bias per label, nothing else
    assert result["train_steps"] == 0 and result["learning_rate"] is None and result["train_seconds"] > 0
    grid = result["probe_c_grid"]
    assert [g["C"] for g in grid] == list(C_GRID)
    best = max(g["validation_accuracy"] for g in grid)
    assert result["probe_c"] == next(g["C"] for g in grid if g["validation_accuracy"] == best)
    assert result["benchmark_agreement"] == 1.0  # the independent loop makes the same predictions, in row order

    config = profile_config("smoke", configuration="embeddings+logreg", output=str(run), seed=result["seed"])
    tokenizer = load_tokenizer(config.model)
    data, meta = load_prepared(config, tokenizer)
    model = load_trained_model(config, run / "models" / result["name"], 2, meta["id2label"])
    reloaded = PerformanceBenchmark(model, tokenizer, data["test"], 2).predict().argmax(-1)
    assert reloaded.tolist() == result["test_predictions"]


def test_without_a_validation_split_c_is_the_default_not_chosen_on_the_test_reviews(tmp_path):
    run = tmp_path / "run"
    done = run_bertpeft(
        "train", "--profile", "smoke", "--config", "embeddings+logreg", "--n-validation", "0", "--output", run
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "no validation split, so C = 1" in done.stdout
    result = result_of(run)
    assert result["probe_c"] == 1.0 and result["probe_c_grid"] is None


def test_export_refuses_it_in_one_line(tmp_path):
    done = run_bertpeft("export", "--config", "embeddings+logreg", "--output", tmp_path / "run")
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "logistic regression" in done.stderr, done.stderr
