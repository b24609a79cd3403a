"""Metrics against values worked out by hand (no Hub: `evaluate.load` would need one)."""

import numpy as np
import pytest

from bertpeft.metrics import classification_metrics, make_compute_metrics

# Binary: TP 3, FN 1, FP 2, TN 2 with label 1 as the positive class.
BINARY_LABELS = [1, 1, 1, 0, 0, 0, 1, 0]
BINARY_PREDICTIONS = [1, 0, 1, 0, 1, 1, 1, 0]
BINARY_EXPECTED = {"accuracy": 5 / 8, "precision": 3 / 5, "recall": 3 / 4, "f1": 2 * 0.6 * 0.75 / (0.6 + 0.75)}

# Three classes, macro averages: per class (precision, recall, F1) = (1/2, 1/2, 1/2), (2/3, 1, 4/5), (1, 1/2, 2/3).
MULTI_LABELS = [0, 0, 1, 1, 2, 2]
MULTI_PREDICTIONS = [0, 1, 1, 1, 2, 0]
MULTI_EXPECTED = {
    "accuracy": 4 / 6,
    "precision": (1 / 2 + 2 / 3 + 1) / 3,
    "recall": (1 / 2 + 1 + 1 / 2) / 3,
    "f1": (1 / 2 + 4 / 5 + 2 / 3) / 3,
}


def test_binary_metrics_by_hand():
    assert classification_metrics(BINARY_PREDICTIONS, BINARY_LABELS, num_labels=2) == pytest.approx(BINARY_EXPECTED)


def test_three_class_macro_metrics_by_hand():
    assert classification_metrics(MULTI_PREDICTIONS, MULTI_LABELS, num_labels=3) == pytest.approx(MULTI_EXPECTED)


def test_all_four_metrics_are_plain_floats():
    metrics = classification_metrics(BINARY_PREDICTIONS, BINARY_LABELS, num_labels=2)
    assert set(metrics) == {"accuracy", "precision", "recall", "f1"}
    assert all(type(v) is float for v in metrics.values()), "JSON-serialisable"


def test_no_positive_predictions_give_zero_not_an_error():
    metrics = classification_metrics([0, 0, 0, 0], [0, 1, 0, 1], num_labels=2)
    assert metrics == {"accuracy": 0.5, "precision": 0.0, "recall": 0.0, "f1": 0.0}


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="3 predictions for 4 labels"):
        classification_metrics([0, 1, 0], [0, 1, 0, 1], num_labels=2)


def test_trainer_compute_metrics_takes_the_argmax_of_logits():
    from transformers import EvalPrediction

    one_hot = np.eye(3)[MULTI_PREDICTIONS] * 2.5 - 1.0  # the predicted class has the largest logit
    compute = make_compute_metrics(num_labels=3)
    assert compute(EvalPrediction(predictions=one_hot, label_ids=np.array(MULTI_LABELS))) == pytest.approx(
        MULTI_EXPECTED
    )
    assert compute((one_hot, np.array(MULTI_LABELS))) == pytest.approx(MULTI_EXPECTED)
    assert compute(((one_hot, None), np.array(MULTI_LABELS))) == pytest.approx(MULTI_EXPECTED)
