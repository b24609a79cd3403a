"""Accuracy, precision, recall and F1 computed locally (scikit-learn), so evaluation works offline.

`evaluate.load("accuracy")` fetches its metric script from the Hub; these give the same numbers without it.
Two classes: precision/recall/F1 of the positive class (label 1). More classes: macro averages.
"""

from __future__ import annotations

import numpy as np

METRICS = ("accuracy", "precision", "recall", "f1")


def classification_metrics(predictions, labels, num_labels: int) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, precision_recall_fscore_support

    predictions, labels = np.asarray(predictions), np.asarray(labels)
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    average = "binary" if num_labels == 2 else "macro"
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels,
        predictions,
        average=average,
        labels=list(range(num_labels)) if average == "macro" else None,
        zero_division=0,
    )
    return {
        "accuracy": float(accuracy_score(labels, predictions)),
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
    }


def make_compute_metrics(num_labels: int):
    """The Trainer's `compute_metrics`: logits and labels in, the four metrics out."""

    def compute_metrics(eval_pred) -> dict[str, float]:
        logits, labels = eval_pred
        logits = logits[0] if isinstance(logits, tuple) else logits
        return classification_metrics(np.argmax(logits, axis=-1), labels, num_labels)

    return compute_metrics
