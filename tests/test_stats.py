"""Statistics for comparing configurations, checked against textbook values and slow, obvious reference code."""

import math
import time

import numpy as np
import pytest
from scipy.stats import binom
from scipy.stats import t as student_t

from bertpeft import stats
from bertpeft.metrics import classification_metrics
from bertpeft.stats import (
    bootstrap_interval,
    holm,
    mcnemar_test,
    mean_and_interval,
    metric_intervals,
    paired_difference,
    wilson_interval,
)


def noisy_predictions(n: int, num_labels: int, accuracy: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and predictions that are right about `accuracy` of the time, wrong to a random class otherwise."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_labels, n)
    wrong = (labels + rng.integers(1, num_labels, n)) % num_labels
    return np.where(rng.random(n) < accuracy, labels, wrong), labels


def reference_bootstrap(predictions, labels, num_labels, metric, confidence, n_resamples, seed, block=None):
    """The obvious bootstrap: the same row draws as `bootstrap_interval`, scikit-learn once per resample."""
    predictions, labels = np.asarray(predictions), np.asarray(labels)
    n = len(labels)
    rng = np.random.default_rng(seed)
    block = block or n_resamples
    indices = np.concatenate(
        [rng.integers(0, n, size=(min(block, n_resamples - s), n)) for s in range(0, n_resamples, block)]
    )
    values = [classification_metrics(predictions[i], labels[i], num_labels)[metric] for i in indices]
    tail = (1 - confidence) / 2 * 100
    return tuple(np.percentile(values, [tail, 100 - tail]))


# Wilson


def test_wilson_matches_textbook_value():
    # 81 successes in 263 trials (Wikipedia's worked example); formula evaluated by hand gives (0.25529, 0.36621).
    low, high = wilson_interval(81, 263)
    assert (round(low, 3), round(high, 3)) == (0.255, 0.366)
    assert low == pytest.approx(0.255289, abs=1e-5)
    assert high == pytest.approx(0.366210, abs=1e-5)


@pytest.mark.parametrize("proportion", [0.02, 0.3, 0.5, 0.9, 0.98])
def test_wilson_contains_estimate_and_narrows_with_n(proportion):
    widths = []
    for n in (50, 500, 5000):
        successes = round(proportion * n)
        low, high = wilson_interval(successes, n)
        assert 0.0 <= low < successes / n < high <= 1.0
        widths.append(high - low)
    assert widths[0] > widths[1] > widths[2]


def test_wilson_edges_and_confidence():
    assert wilson_interval(0, 20)[0] == 0.0
    assert wilson_interval(20, 20)[1] == 1.0
    low95, high95 = wilson_interval(40, 100, 0.95)
    low99, high99 = wilson_interval(40, 100, 0.99)
    assert low99 < low95 and high99 > high95


@pytest.mark.parametrize(
    ("successes", "n", "confidence", "words"),
    [(0, 0, 0.95, "n > 0"), (5, -1, 0.95, "n > 0"), (11, 10, 0.95, "successes"), (5, 10, 1.0, "confidence")],
)
def test_wilson_rejects_bad_input(successes, n, confidence, words):
    with pytest.raises(ValueError, match=words):
        wilson_interval(successes, n, confidence)


# Bootstrap


@pytest.mark.parametrize("metric", ["accuracy", "precision", "recall", "f1"])
@pytest.mark.parametrize("num_labels", [2, 3])
def test_bootstrap_matches_slow_reference(metric, num_labels):
    predictions, labels = noisy_predictions(40, num_labels, 0.7, seed=num_labels)
    fast = bootstrap_interval(predictions, labels, num_labels, metric, confidence=0.9, n_resamples=200, seed=7)
    slow = reference_bootstrap(predictions, labels, num_labels, metric, confidence=0.9, n_resamples=200, seed=7)
    assert fast == pytest.approx(slow, abs=1e-12)


def test_bootstrap_matches_reference_with_empty_classes():
    # A rare class is missing from many resamples: its zero precision/recall/F1 must still enter the macro mean.
    labels = np.array([0] * 12 + [1] * 6 + [2])
    predictions = np.array([0] * 10 + [1, 2] + [1] * 5 + [0] + [2])
    for metric in ("precision", "recall", "f1"):
        fast = bootstrap_interval(predictions, labels, 3, metric, n_resamples=200, seed=3)
        assert fast == pytest.approx(reference_bootstrap(predictions, labels, 3, metric, 0.95, 200, 3), abs=1e-12)


def test_bootstrap_in_blocks_matches_reference(monkeypatch):
    # Large test sets are resampled a block at a time; blocks must follow the documented draw order.
    predictions, labels = noisy_predictions(30, 2, 0.8, seed=5)
    monkeypatch.setattr(stats, "_MAX_BLOCK_CELLS", 30 * 7)
    fast = bootstrap_interval(predictions, labels, 2, "f1", n_resamples=100, seed=11)
    assert fast == pytest.approx(reference_bootstrap(predictions, labels, 2, "f1", 0.95, 100, 11, block=7), abs=1e-12)


@pytest.mark.parametrize("num_labels", [2, 3])
def test_bootstrap_contains_observed_f1_and_is_seeded(num_labels):
    predictions, labels = noisy_predictions(1000, num_labels, 0.85, seed=1)
    observed = classification_metrics(predictions, labels, num_labels)["f1"]
    low, high = bootstrap_interval(predictions, labels, num_labels, seed=0)
    assert low < observed < high
    assert 0.01 < high - low < 0.1  # about +-2.5 points for 1,000 rows
    assert bootstrap_interval(predictions, labels, num_labels, seed=0) == (low, high)
    assert bootstrap_interval(predictions, labels, num_labels, seed=1) != (low, high)
    narrower = bootstrap_interval(predictions, labels, num_labels, confidence=0.5, seed=0)
    assert low < narrower[0] < narrower[1] < high


def test_bootstrap_is_fast_enough():
    predictions, labels = noisy_predictions(1000, 2, 0.9, seed=2)
    start = time.perf_counter()
    bootstrap_interval(predictions, labels, 2, "f1", n_resamples=2000)
    bootstrap_interval(predictions, labels, 2, "accuracy", n_resamples=2000)
    # About 0.02 s each when vectorised; a scikit-learn call per resample takes several seconds.
    assert time.perf_counter() - start < 2.0


@pytest.mark.parametrize(
    ("predictions", "labels", "kwargs", "words"),
    [
        ([0, 1, 1], [0, 1], {}, "3 predictions for 2 labels"),
        ([], [], {}, "no rows"),
        ([0, 1], [0, 1], {"metric": "auc"}, "unknown metric"),
        ([0, 2], [0, 1], {}, r"predictions must be class ids in \[0, 2\)"),
        ([0, 1], [0, 1], {"n_resamples": 0}, "n_resamples"),
    ],
)
def test_bootstrap_rejects_bad_input(predictions, labels, kwargs, words):
    with pytest.raises(ValueError, match=words):
        bootstrap_interval(predictions, labels, 2, **kwargs)


def test_metric_intervals_combines_wilson_and_bootstrap():
    predictions, labels = noisy_predictions(500, 2, 0.8, seed=4)
    intervals = metric_intervals(predictions, labels, 2, confidence=0.9, seed=3)
    assert set(intervals) == {"accuracy_low", "accuracy_high", "f1_low", "f1_high"}
    correct = int((predictions == labels).sum())
    assert (intervals["accuracy_low"], intervals["accuracy_high"]) == wilson_interval(correct, 500, 0.9)
    assert (intervals["f1_low"], intervals["f1_high"]) == bootstrap_interval(
        predictions, labels, 2, "f1", confidence=0.9, seed=3
    )


# McNemar


def hand_built_pair():
    """30 rows, all labelled 1: 15 both right, 10 only A right, 2 only B right, 3 both wrong."""
    a = [1] * 15 + [1] * 10 + [0] * 2 + [0] * 3
    b = [1] * 15 + [0] * 10 + [1] * 2 + [0] * 3
    return np.array(a), np.array(b), np.ones(30, dtype=int)


def test_mcnemar_hand_built_example():
    a, b, labels = hand_built_pair()
    result = mcnemar_test(a, b, labels)
    expected_p = 2 * binom.cdf(2, 12, 0.5)  # = 2 * (1 + 12 + 66) / 4096
    assert result == {"a_only_right": 10, "b_only_right": 2, "p_value": pytest.approx(expected_p), "n": 30}
    assert result["p_value"] == pytest.approx(158 / 4096)


def test_mcnemar_is_symmetric():
    a, b, labels = hand_built_pair()
    forward, backward = mcnemar_test(a, b, labels), mcnemar_test(b, a, labels)
    assert (forward["a_only_right"], forward["b_only_right"]) == (backward["b_only_right"], backward["a_only_right"])
    assert forward["p_value"] == backward["p_value"]


def test_mcnemar_without_disagreement_and_with_balanced_disagreement():
    labels = np.array([0, 1, 0, 1, 1])
    assert mcnemar_test(labels, labels, labels)["p_value"] == 1.0
    a, b = np.array([0, 0, 0, 1, 1]), np.array([1, 1, 0, 1, 1])  # A only right on row 0, B only right on row 1
    assert mcnemar_test(a, b, labels) == {"a_only_right": 1, "b_only_right": 1, "p_value": 1.0, "n": 5}


def test_mcnemar_rejects_mismatched_lengths():
    with pytest.raises(ValueError, match=r"predictions_a has 4 rows, predictions_b 3, labels 4"):
        mcnemar_test([0, 1, 1, 0], [0, 1, 1], [0, 1, 1, 0])


# Over seeds


def test_mean_and_interval_on_one_two_three():
    result = mean_and_interval([1.0, 2.0, 3.0])
    half_width = student_t.ppf(0.975, 2) * 1 / math.sqrt(3)
    assert result["mean"] == pytest.approx(2.0)
    assert result["std"] == pytest.approx(1.0)
    assert result["n"] == 3
    assert result["low"] == pytest.approx(2 - half_width)
    assert result["high"] == pytest.approx(2 + half_width)
    assert half_width == pytest.approx(2.484, abs=1e-3)  # t(0.975, 2) = 4.303


def test_mean_and_interval_single_value_and_empty():
    assert mean_and_interval([0.91]) == {"mean": 0.91, "std": None, "n": 1, "low": None, "high": None}
    with pytest.raises(ValueError, match="at least one value"):
        mean_and_interval([])


def _paired_runs(rng, seeds, reviews, difference):
    """Simulated correctness of A and B on the same reviews: each review has its own difficulty, each training run
    its own offset (seed-to-seed variation), and A is right `difference` more often than B on average."""
    difficulty = rng.uniform(0.6, 0.95, size=reviews)
    a = rng.random((seeds, reviews)) < np.clip(difficulty + rng.normal(0, 0.02, (seeds, 1)) + difference / 2, 0, 1)
    b = rng.random((seeds, reviews)) < np.clip(difficulty + rng.normal(0, 0.02, (seeds, 1)) - difference / 2, 0, 1)
    return a, b


def test_paired_difference_covers_a_known_difference_about_95_percent_of_the_time():
    rng = np.random.default_rng(7)
    covered = []
    for i in range(200):
        a, b = _paired_runs(rng, seeds=8, reviews=300, difference=0.03)
        result = paired_difference(a, b, n_resamples=400, seed=i)
        covered.append(result["low"] <= 0.03 <= result["high"])
        assert result["runs"] == 8 and result["reviews"] == 300
    assert 0.88 <= np.mean(covered) <= 0.99


def test_paired_difference_on_one_run_is_the_paired_bootstrap_over_reviews():
    a = np.array([1, 1, 1, 0, 1, 0, 1, 1])
    b = np.array([1, 0, 1, 0, 0, 0, 1, 1])
    result = paired_difference(a, b, n_resamples=2000)
    assert result["difference"] == pytest.approx(2 / 8) and result["runs"] == 1
    assert result["low"] >= 0 and result["high"] <= 0.625  # B is never right where A is wrong
    with pytest.raises(ValueError, match="equal"):
        paired_difference(np.ones((2, 5)), np.ones((3, 5)))


def test_without_a_difference_the_paired_test_holds_its_level_and_holm_the_familys():
    rng = np.random.default_rng(3)
    # six comparisons with no true difference, as a notebook reports against one reference
    p_values = np.array(
        [
            [paired_difference(*_paired_runs(rng, 3, 200, 0.0), n_resamples=300, seed=k)["p_value"] for k in range(6)]
            for _ in range(150)
        ]
    )
    assert np.mean(p_values < 0.05) <= 0.07  # each test alone holds its level (the two-level bootstrap errs wide)
    assert np.mean([min(holm(row)) < 0.05 for row in p_values]) <= 0.07
    # Holm itself, on exact p-values of six independent true null hypotheses: the family's error rate falls from
    # about 1 - 0.95**6 = 26% uncorrected to at most 5%.
    exact = rng.uniform(size=(4000, 6))
    assert 0.23 <= np.mean((exact < 0.05).any(axis=1)) <= 0.30
    assert 0.035 <= np.mean([min(holm(row)) < 0.05 for row in exact]) <= 0.06


def test_holm_adjusts_as_the_textbook_example():
    assert holm([0.01, 0.04, 0.03, 0.5]) == pytest.approx([0.04, 0.09, 0.09, 0.5])
    assert holm([0.2]) == [0.2]
