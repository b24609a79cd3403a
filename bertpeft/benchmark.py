"""`PerformanceBenchmark`: metrics, size and latency from its own inference loop, independent of the Trainer.

It exists to confirm the Trainer's numbers (Experiment A's check): it feeds the same rows, in batches of the same
size and under the same autocast precision, so its predictions are the Trainer's and so are its metrics. Its
batches group reviews of similar length (sorted by length, so each batch pads to its own longest review, not to a
random one's): padding changes no prediction, and on 1,000 Yelp test reviews cut at 128 tokens, in batches of 64,
it feeds 95,360 tokens instead of 128,000 (the reviews hold 91,974); the logits come back in row order. Latency
and throughput time the model's forward pass only (the inputs are tokenized and padded before the clock starts):
latency at batch 1 in row order after warm-up; throughput over the prediction pass itself (every review of the
split in its length-ordered batches, the first batch left out as warm-up), so no extra pass is paid for it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from .data import MODEL_INPUTS, length_order
from .device import accelerator, autocast, resolve_precision, synchronize
from .layout import TrainedRun
from .metrics import classification_metrics


class PerformanceBenchmark:
    """Benchmark `model` on `dataset` (a tokenized split with `input_ids` and `label`).

    `precision` is "fp32", or "fp16"/"bf16" for autocast like the Trainer's mixed precision.
    """

    def __init__(
        self,
        model,
        tokenizer,
        dataset,
        num_labels: int,
        name: str = "model",
        batch_size: int = 64,
        precision: str = "fp32",
    ):
        self.model, self.tokenizer, self.dataset = model, tokenizer, dataset
        self.num_labels, self.name, self.batch_size, self.precision = num_labels, name, batch_size, precision
        self.forward_seconds: list[float] = []  # per batch of the last `predict`, for `throughput`
        self.batch_reviews: list[int] = []

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _batches(self, rows, batch_size: int):
        """Padded input batches on the model's device, in row order (the Trainer's collator and padding)."""
        from transformers import DataCollatorWithPadding

        collate = DataCollatorWithPadding(self.tokenizer, pad_to_multiple_of=8 if self.precision == "fp16" else None)
        keep = [c for c in MODEL_INPUTS if c in rows.column_names]
        for start in range(0, len(rows), batch_size):
            chunk = rows[start : start + batch_size]
            features = [{k: chunk[k][i] for k in keep} for i in range(len(chunk["input_ids"]))]
            yield {k: v.to(self.device) for k, v in collate(features).items()}

    def _forward(self, batch):
        with autocast(self.device.type, self.precision):
            return self.model(**batch).logits

    def _sync(self) -> None:
        synchronize(self.device.type)  # queued GPU work (CUDA or MPS) done before the clock is read

    def length_order(self) -> np.ndarray:
        return length_order(self.dataset)

    def predict(self) -> np.ndarray:
        """Logits for every row of the data set, computed in batches of similar length, returned in row order.
        Each batch's forward pass is timed (`forward_seconds`, `batch_reviews`, in batch order) for the throughput."""
        import torch

        order = self.length_order()
        self.model.eval()
        out, self.forward_seconds, self.batch_reviews = [], [], []
        with torch.inference_mode():
            for batch in self._batches(self.dataset.select(order), self.batch_size):
                start = time.perf_counter()
                logits = self._forward(batch)
                self._sync()
                self.forward_seconds.append(time.perf_counter() - start)
                self.batch_reviews.append(batch["input_ids"].shape[0])
                out.append(logits.float().cpu().numpy())
        out = np.concatenate(out)
        logits = np.empty_like(out)
        logits[order] = out
        return logits

    def throughput(self) -> dict[str, float | None]:
        """Reviews per second of the last `predict` pass at the benchmark's batch size: forward passes only, the
        first batch left out as warm-up (None: a single batch, nothing left to time)."""
        timed = slice(1, None) if len(self.forward_seconds) > 1 else slice(0, 0)
        seconds, reviews = sum(self.forward_seconds[timed]), sum(self.batch_reviews[timed])
        return {
            "reviews_per_second": reviews / seconds if seconds else None,
            "throughput_batch_size": self.batch_size,
        }

    def compute_metrics(self, predictions=None) -> dict[str, float]:
        predictions = self.predict().argmax(-1) if predictions is None else predictions
        return classification_metrics(predictions, self.dataset["label"], self.num_labels)

    def compute_size(self) -> dict[str, float]:
        """Parameters in memory, and MB of safetensors on disk: `saved_mb` is what `save_pretrained` writes (for a
        PEFT model the adapter alone), `size_mb` all the weights needed to run it (for a PEFT model, adapter + base)."""
        params = sum(p.numel() for p in self.model.parameters())
        peft = hasattr(self.model, "peft_config")
        # bertpeft never resizes the vocabulary: peft's "auto" would look the base model up by the name its config
        # gives (a Hub id, for an exported adapter) to find out, and warn when it cannot
        saved = _saved_mb(
            partial(self.model.save_pretrained, save_embedding_layers=False) if peft else self.model.save_pretrained
        )
        size = saved
        if peft:  # an unmerged adapter runs on top of the base model's weights
            size += _saved_mb(lambda folder: _save_base_weights(self.model, folder))
        return {"parameters": params, "size_mb": size, "saved_mb": saved}

    def time_pipeline(self, n_single: int = 20, warmup: int = 3) -> dict[str, float | None]:
        """Median and p90 latency (ms per review) at batch 1, over the split's first reviews in row order."""
        import torch

        singles = list(self._batches(self.dataset.select(range(min(len(self.dataset), n_single + warmup))), 1))
        self.model.eval()
        with torch.inference_mode():
            times = [self._timed(batch) * 1000 for batch in singles][warmup:]
        return {  # None: too few reviews to time any after the warm-up ones
            "latency_ms_median": statistics.median(times) if times else None,
            "latency_ms_p90": float(np.percentile(times, 90)) if times else None,
        }

    def _timed(self, batch) -> float:
        start = time.perf_counter()
        self._forward(batch)
        self._sync()
        return time.perf_counter() - start

    def run_benchmark(self, size: bool = True, latency: bool = True) -> dict[str, Any]:
        logits = self.predict()
        result: dict[str, Any] = {"name": self.name, **self.compute_metrics(logits.argmax(-1))}
        result["predictions"] = logits.argmax(-1).tolist()
        if size:
            result.update(self.compute_size())
        if latency:
            result.update(self.time_pipeline())
            result.update(self.throughput())
        return result


def _saved_mb(save) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        save(tmp)
        return sum(p.stat().st_size for p in Path(tmp).rglob("*.safetensors")) / 2**20


def _save_base_weights(peft_model, folder: str) -> None:
    """The base model's own tensors (no LoRA matrices, no PEFT copy of the head), as one safetensors file."""
    from safetensors.torch import save_file

    state = peft_model.get_base_model().state_dict()
    base = {
        k: v.detach().cpu().contiguous() for k, v in state.items() if "lora_" not in k and "modules_to_save" not in k
    }
    save_file(base, str(Path(folder) / "base.safetensors"))


def agreement(predictions, reference) -> float:
    """Share of rows where two prediction lists agree (1.0: the same predictions)."""
    predictions, reference = np.asarray(predictions), np.asarray(reference)
    if predictions.shape != reference.shape:
        raise ValueError(f"{len(predictions)} predictions against {len(reference)} reference predictions")
    return float(np.mean(predictions == reference))


def benchmark_result(model, tokenizer, dataset, config, num_labels: int, reference=None) -> dict[str, Any]:
    """The fields a configuration's result JSON gets from the benchmark (prefixed `benchmark_`); with the
    Trainer's predictions as `reference`, also `benchmark_agreement` (1.0 when every prediction is the same)."""
    precision = resolve_precision(config.precision, model.device.type if hasattr(model, "device") else None)
    bench = PerformanceBenchmark(
        model, tokenizer, dataset, num_labels, config.configuration, config.eval_batch_size, precision
    )
    measured = bench.run_benchmark(size=False)
    predictions = measured.pop("predictions")
    fields = {f"benchmark_{k}": v for k, v in measured.items() if k != "name"}
    if reference is not None:
        fields["benchmark_agreement"] = agreement(predictions, reference)
    return fields


def benchmark_row(name: str, model, tokenizer, test, trained: TrainedRun) -> dict[str, Any]:
    """One model's PerformanceBenchmark on a run's test split, beside the Trainer's accuracy for `trained`."""
    device = accelerator()
    bench = PerformanceBenchmark(
        model.to(device),
        tokenizer,
        test,
        trained.num_labels,
        name,
        trained.config.eval_batch_size,
        trained.result.numeric_precision or resolve_precision(trained.config.precision, device),
    )  # as the Trainer computed it, also where `auto` means another precision on this machine
    row = bench.run_benchmark()
    agree = agreement(row.pop("predictions"), trained.result.test_predictions)
    keys = ("parameters", "size_mb", "saved_mb", "latency_ms_median", "latency_ms_p90", "reviews_per_second")
    return {
        "model": name,
        "accuracy": row["accuracy"],
        "trainer_accuracy": trained.result.accuracy,
        "agreement_with_trainer": agree,
        **{k: row[k] for k in keys},
    }
