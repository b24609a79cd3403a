"""One trained (or evaluated) configuration's result: the type every part of bertpeft reads, and the one reader
and writer of its JSON (`<run>/results/<config>-seed<seed>.json`).

A result file holds `schema` (SCHEMA): a file of another version, or one that lacks a field this version
needs, is refused with one line that says how to make it again, never half read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import OneLineError

# The layout of result JSON. 1: the first with this field; files written before it (which lack it) have the same
# layout and are read as 1.
SCHEMA = 1
AGAIN = "it was written by another version of bertpeft; make it again with the same command and --force"


def labels_by_id(id2label: dict) -> dict[int, str]:
    """An id -> label map as JSON stores it (ids as text keys) with its ids as numbers again."""
    return {int(k): v for k, v in id2label.items()}


class ResultError(OneLineError):
    """A result JSON this version of bertpeft cannot read: the message names the file and how to make it again."""


@dataclass
class Result:
    """What one configuration and seed measured, and what it was run with (the fields of its result JSON)."""

    name: str
    config: str
    seed: int
    profile: str
    model: str
    trainable_params: int
    total_params: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    num_labels: int
    id2label: dict[str, str]
    run_config: dict[str, Any]
    trainable_percent: float = 0.0
    adapter_params: int = 0
    loss: float | None = None
    # 95% intervals over the test reviews: Wilson for accuracy, a seeded bootstrap for F1
    accuracy_low: float | None = None
    accuracy_high: float | None = None
    f1_low: float | None = None
    f1_high: float | None = None
    # timings: the training loop alone (train_seconds), the rest apart
    setup_seconds: float | None = None
    train_seconds: float = 0.0
    train_steps: int = 0
    train_samples_per_second: float | None = None
    train_tokens_per_second: float | None = None
    timed_steps: int | None = None
    step_seconds_median: float | None = None
    step_seconds_p10: float | None = None
    step_seconds_p90: float | None = None
    trainer_runtime_seconds: float | None = None
    resumed_from: str | None = None
    eval_seconds: float | None = None
    # the embeddings baseline (a logistic regression on frozen embeddings)
    embed_seconds: float | None = None
    fit_seconds: float | None = None
    probe_c: float | None = None
    probe_c_grid: list[dict[str, float]] | None = None
    # the learning rate, and the search on the validation reviews that chose it
    learning_rate: float | None = None
    learning_rate_grid: list[dict[str, Any]] | None = None
    learning_rate_tuned_with_seed: int | None = None
    n_validation: int = 0
    numeric_precision: str = "fp32"
    peak_memory_mb: float | None = None
    device: dict[str, Any] | None = None
    world_size: int = 1
    loss_curve: list[dict[str, float]] = field(default_factory=list)
    eval_curve: list[dict[str, Any]] = field(default_factory=list)
    # every pass over the test reviews, in order
    test_passes: list[str] = field(default_factory=list)
    # per test review, by position in the test split
    test_predictions: list[int] | None = None
    test_labels: list[int] | None = None
    test_probabilities: list[float] | None = None
    versions: dict[str, str] = field(default_factory=dict)
    git: dict[str, Any] = field(default_factory=dict)
    finished_at: str | None = None
    # the independent inference loop (PerformanceBenchmark), when it ran
    benchmark_accuracy: float | None = None
    benchmark_precision: float | None = None
    benchmark_recall: float | None = None
    benchmark_f1: float | None = None
    benchmark_latency_ms_median: float | None = None
    benchmark_latency_ms_p90: float | None = None
    benchmark_reviews_per_second: float | None = None
    benchmark_throughput_batch_size: int | None = None
    benchmark_agreement: float | None = None
    benchmark_seconds: float | None = None
    schema: int = SCHEMA

    @property
    def labels_by_id(self) -> dict[int, str]:
        """The id -> label map with its ids as numbers (JSON keeps them as text)."""
        return labels_by_id(self.id2label)

    def label(self, label_id: int) -> str:
        return self.id2label[str(int(label_id))]

    @property
    def correct(self) -> tuple[int, ...] | None:
        """1 where the saved test prediction equals the review's label, 0 where not; None without them."""
        predictions, labels = self.test_predictions, self.test_labels
        if predictions is None or labels is None or len(predictions) != len(labels):
            return None
        return tuple(int(p == y) for p, y in zip(predictions, labels, strict=True))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = "a result") -> Result:
        """The result `data` holds; ResultError (one line naming `where`) for another schema, a missing field or
        one this version does not know."""
        if not isinstance(data, dict):
            raise ResultError(f"{where} is not a result (a JSON object was expected): {AGAIN}")
        schema = data.get("schema", 1)
        if schema != SCHEMA:
            newer = isinstance(schema, int) and schema > SCHEMA
            raise ResultError(
                f"{where} has result schema {schema!r}, this bertpeft reads {SCHEMA}: "
                + ("upgrade bertpeft to read it" if newer else AGAIN)
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ResultError(f"{where} holds {unknown[0]!r}, which result schema {SCHEMA} has no field for: {AGAIN}")
        required = [
            f.name
            for f in dataclasses.fields(cls)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        ]
        missing = [name for name in required if name not in data]
        if missing:
            raise ResultError(f"{where} lacks {missing[0]!r}: {AGAIN}")
        return cls(**data)


def read_result(path: Path) -> Result:
    """The result JSON at `path`."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except ValueError as err:
        raise ResultError(f"{path} is not valid JSON ({err}): {AGAIN}") from None
    return Result.from_dict(data, str(path))
