"""Uncertainty and significance for comparing classifier configurations evaluated on the same test reviews.

A single accuracy or F1 on a few hundred reviews hides how much it would move on another sample, and two
configurations scored on the same rows are not independent. These helpers give the error bars and the paired test
that say whether a difference between configurations is larger than noise:

- `wilson_interval`: confidence interval for accuracy (a proportion of correct rows).
- `bootstrap_interval` / `metric_intervals`: intervals for F1 (or any metric of `bertpeft.metrics`), resampling rows.
- `mcnemar_test`: exact paired test of two configurations' predictions on the same rows.
- `mean_and_interval`: mean and t-interval of one metric over training seeds.
- `pooled_accuracy`: accuracy over several seeds with an interval that resamples seeds and test reviews.
- `paired_difference` / `holm`: two configurations compared on the same reviews, pooled over seeds, and the
  multiple-comparison correction over every comparison a notebook reports.

Only numpy is imported here; scipy is imported by the functions that need it.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numpy.typing import ArrayLike

BOOTSTRAP_METRICS = ("accuracy", "precision", "recall", "f1")

# Bounds the memory of one block of resampled rows (index matrix plus gathered codes, 16 bytes a cell, so 32 MB)
# so that a 25,000-review test set does not build a 2000 x 25,000 matrix at once.
_MAX_BLOCK_CELLS = 2_000_000


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def wilson_interval(successes: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for the proportion `successes / n` (e.g. accuracy: correct rows out of n).

    Unlike the normal-approximation interval it stays inside [0, 1] and keeps close to its nominal coverage for
    proportions near 0 or 1, which is where good sentiment classifiers live.
    """
    from scipy.stats import norm

    _check_confidence(confidence)
    if n <= 0:
        raise ValueError(f"wilson_interval needs at least one trial (n > 0), got n={n}")
    if not 0 <= successes <= n:
        raise ValueError(f"successes must lie between 0 and n={n}, got {successes}")
    z = float(norm.ppf(0.5 + confidence / 2))
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half_width = z / denominator * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    # Clipping only removes floating-point overshoot at p = 0 or 1; mathematically the bounds are inside [0, 1].
    return max(0.0, centre - half_width), min(1.0, centre + half_width)


def _as_label_arrays(predictions: ArrayLike, labels: ArrayLike, num_labels: int) -> tuple[np.ndarray, np.ndarray]:
    predictions, labels = np.asarray(predictions).ravel(), np.asarray(labels).ravel()
    if predictions.shape != labels.shape:
        raise ValueError(f"{predictions.shape[0]} predictions for {labels.shape[0]} labels")
    if labels.size == 0:
        raise ValueError("no rows: need at least one prediction and label")
    if num_labels < 2:
        raise ValueError(f"num_labels must be at least 2, got {num_labels}")
    for name, values in (("predictions", predictions), ("labels", labels)):
        if values.min() < 0 or values.max() >= num_labels:
            raise ValueError(f"{name} must be class ids in [0, {num_labels}), found {values.min()}..{values.max()}")
    return predictions.astype(np.int64), labels.astype(np.int64)


def _metrics_from_confusion(confusion: np.ndarray, metric: str) -> np.ndarray:
    """`metric` for each confusion matrix in a stack of shape (resamples, true class, predicted class).

    Mirrors `classification_metrics` (scikit-learn with zero_division=0): two classes score the positive class
    (label 1), more classes take the unweighted mean over every class, including classes absent from a resample.
    """
    n = confusion.sum(axis=(1, 2))
    true_positive = np.diagonal(confusion, axis1=1, axis2=2).astype(np.float64)
    if metric == "accuracy":
        return true_positive.sum(axis=1) / n
    predicted = confusion.sum(axis=1).astype(np.float64)
    actual = confusion.sum(axis=2).astype(np.float64)
    if metric == "precision":
        numerator, denominator = true_positive, predicted
    elif metric == "recall":
        numerator, denominator = true_positive, actual
    else:
        # 2TP / (2TP + FP + FN) equals 2PR / (P + R) and is defined (as 0) exactly where scikit-learn gives 0.
        numerator, denominator = 2 * true_positive, predicted + actual
    per_class = np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)
    if confusion.shape[1] == 2:
        return per_class[:, 1]
    return per_class.mean(axis=1)


def bootstrap_interval(
    predictions: ArrayLike,
    labels: ArrayLike,
    num_labels: int,
    metric: str = "f1",
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of `metric` ("accuracy", "precision", "recall" or "f1"), resampling test rows.

    Each resample draws len(labels) rows with replacement; the metric is computed as `classification_metrics`
    does. Row indices come from `numpy.random.default_rng(seed).integers(0, n, size=(k, n))`, drawn in blocks of
    k resamples; when n_resamples * n is at most 2,000,000 that is one draw of all resamples, so the result can be
    reproduced exactly. The same seed gives the same interval.
    """
    _check_confidence(confidence)
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"unknown metric {metric!r}: choose one of {', '.join(BOOTSTRAP_METRICS)}")
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    predictions, labels = _as_label_arrays(predictions, labels, num_labels)
    n = labels.size
    cells = num_labels * num_labels
    # One small integer per row encodes its (true, predicted) cell, so a resample's whole confusion matrix comes
    # from a single bincount instead of a scikit-learn call per resample.
    codes = labels * num_labels + predictions
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_BLOCK_CELLS // n)
    values = np.empty(n_resamples, dtype=np.float64)
    for start in range(0, n_resamples, block):
        rows = min(block, n_resamples - start)
        indices = rng.integers(0, n, size=(rows, n))
        flat = codes[indices]
        flat += (np.arange(rows, dtype=np.int64) * cells)[:, None]
        counts = np.bincount(flat.ravel(), minlength=rows * cells)
        values[start : start + rows] = _metrics_from_confusion(counts.reshape(rows, num_labels, num_labels), metric)
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)


def metric_intervals(
    predictions: ArrayLike, labels: ArrayLike, num_labels: int, confidence: float = 0.95, seed: int = 0
) -> dict[str, float]:
    """Confidence intervals to report beside a configuration's accuracy and F1 on one test set.

    Accuracy is a proportion, so it gets the Wilson interval; F1 has no closed form, so it gets the bootstrap.
    """
    predictions, labels = _as_label_arrays(predictions, labels, num_labels)
    accuracy_low, accuracy_high = wilson_interval(int((predictions == labels).sum()), labels.size, confidence)
    f1_low, f1_high = bootstrap_interval(predictions, labels, num_labels, "f1", confidence, seed=seed)
    return {"accuracy_low": accuracy_low, "accuracy_high": accuracy_high, "f1_low": f1_low, "f1_high": f1_high}


def mcnemar_test(predictions_a: ArrayLike, predictions_b: ArrayLike, labels: ArrayLike) -> dict:
    """Exact McNemar test: do configurations A and B, scored on the same rows, differ in accuracy?

    Only rows where exactly one of them is right carry information. Under "no difference" each such row is a fair
    coin, so the p-value is the two-sided binomial test of min(b, c) successes in b + c trials with p = 0.5.
    Returns {"a_only_right": b, "b_only_right": c, "p_value": p, "n": rows}.
    """
    from scipy.stats import binomtest

    predictions_a = np.asarray(predictions_a).ravel()
    predictions_b = np.asarray(predictions_b).ravel()
    labels = np.asarray(labels).ravel()
    if not predictions_a.size == predictions_b.size == labels.size:
        raise ValueError(
            "McNemar's test needs both configurations scored on the same rows: "
            f"predictions_a has {predictions_a.size} rows, predictions_b {predictions_b.size}, labels {labels.size}"
        )
    a_right = predictions_a == labels
    b_right = predictions_b == labels
    a_only = int((a_right & ~b_right).sum())
    b_only = int((~a_right & b_right).sum())
    discordant = a_only + b_only
    # With no discordant rows the two are indistinguishable on this data; binomtest would reject n = 0.
    p_value = 1.0 if discordant == 0 else float(binomtest(min(a_only, b_only), discordant, 0.5).pvalue)
    return {"a_only_right": a_only, "b_only_right": b_only, "p_value": p_value, "n": int(labels.size)}


def mean_and_interval(values: ArrayLike, confidence: float = 0.95) -> dict:
    """Mean of one metric over runs (e.g. training seeds) with its Student-t confidence interval.

    Returns {"mean", "std" (ddof=1), "n", "low", "high"}; std is None for a single value, low and high are None
    for fewer than two, since one run says nothing about seed-to-seed spread.
    """
    from scipy.stats import t

    _check_confidence(confidence)
    values = np.asarray(values, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("mean_and_interval needs at least one value")
    n = int(values.size)
    mean = float(values.mean())
    if n < 2:
        return {"mean": mean, "std": None, "n": n, "low": None, "high": None}
    std = float(values.std(ddof=1))
    half_width = float(t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return {"mean": mean, "std": std, "n": n, "low": mean - half_width, "high": mean + half_width}


def paired_difference(
    correct_a: ArrayLike,
    correct_b: ArrayLike,
    confidence: float = 0.95,
    n_resamples: int = 10_000,
    seed: int = 0,
) -> dict:
    """Accuracy of A minus accuracy of B, pooled over paired runs scored on the same test reviews, with a two-level
    bootstrap interval and p-value.

    `correct_a`, `correct_b`: one row per run (e.g. training seed; row i of A and of B trained with the same seed),
    one column per test review, 1 where the run got the review right. Each resample draws runs with replacement (the
    seed-to-seed variation) and then reviews with replacement (the sample of test reviews; the same reviews for every
    run, as they were tested), so the interval counts both sources of variation. With one run it is the paired
    bootstrap over reviews alone. Resampling both levels counts the review-by-run noise twice, so the interval errs
    wide (conservative: coverage at or above its level, tested on simulated data). The p-value is two-sided: twice
    the share of resampled differences on the far side of zero (at least 1 / n_resamples). Returns {"difference",
    "low", "high", "p_value", "runs", "reviews"}.
    """
    _check_confidence(confidence)
    a, b = np.asarray(correct_a, dtype=np.float64), np.asarray(correct_b, dtype=np.float64)
    if a.ndim == 1:
        a, b = a[None, :], b[None, :]
    if a.shape != b.shape or a.ndim != 2 or a.size == 0:
        raise ValueError(f"paired_difference needs two equal (runs x reviews) arrays, got {a.shape} and {b.shape}")
    d = a - b
    runs, reviews = d.shape
    rng = np.random.default_rng(seed)
    block = max(1, _MAX_BLOCK_CELLS // (reviews * runs))
    resampled = []
    for start in range(0, n_resamples, block):
        k = min(block, n_resamples - start)
        columns = rng.integers(0, reviews, size=(k, reviews))
        per_run = d[:, columns].mean(-1)  # (runs, k): each run's difference on the k review samples
        rows = rng.integers(0, runs, size=(k, runs)) if runs > 1 else np.zeros((k, 1), dtype=int)
        resampled.append(np.take_along_axis(per_run.T, rows, axis=1).mean(1))
    resampled = np.concatenate(resampled)
    low, high = np.quantile(resampled, [0.5 - confidence / 2, 0.5 + confidence / 2])
    far = min((resampled <= 0).mean(), (resampled >= 0).mean())
    p_value = float(min(1.0, max(2 * far, 1 / n_resamples)))
    return {
        "difference": float(d.mean()),
        "low": float(low),
        "high": float(high),
        "p_value": p_value,
        "runs": int(runs),
        "reviews": int(reviews),
    }


@functools.lru_cache(maxsize=4096)
def _pooled(correct: bytes, shape: tuple[int, int], confidence: float) -> tuple[float, float, float]:
    a = np.frombuffer(correct, dtype=np.int8).reshape(shape)
    d = paired_difference(a, np.zeros_like(a), confidence=confidence)
    return d["difference"], d["low"], d["high"]


def pooled_accuracy(correct: ArrayLike, confidence: float = 0.95) -> dict:
    """Accuracy of one configuration over several runs (training seeds) scored on the same test reviews, with a
    two-level bootstrap interval: resample the runs, then the reviews (see `paired_difference`, of which this is
    the one-sided case), so the interval holds both the seed-to-seed variation and the sample of test reviews.
    `correct`: runs x reviews, 1 where the run got the review right. Returns {"accuracy", "low", "high", "runs",
    "reviews"}. Cached: a notebook asks for the same interval in its table, its figures and its findings."""
    a = np.asarray(correct, dtype=np.int8)
    if a.ndim == 1:
        a = a[None, :]
    accuracy, low, high = _pooled(a.tobytes(), a.shape, confidence)
    return {"accuracy": accuracy, "low": low, "high": high, "runs": a.shape[0], "reviews": a.shape[1]}


def holm(p_values: ArrayLike) -> list[float]:
    """Holm's step-down adjustment of a family of p-values (in their order): reject where the adjusted value is
    below the level, and the chance of any false rejection in the family stays at most that level."""
    p = np.asarray(p_values, dtype=np.float64).ravel()
    m = p.size
    order = np.argsort(p)
    adjusted = np.empty(m)
    running = 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p[index]))
        adjusted[index] = running
    return adjusted.tolist()
