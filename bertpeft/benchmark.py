"""`PerformanceBenchmark`: metrics, size and latency from its own inference loop, independent of the Trainer.

It exists to confirm the Trainer's numbers (Experiment A's check): same predictions, so the same accuracy.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from .metrics import classification_metrics


class PerformanceBenchmark:
    """Benchmark `model` on `dataset` (a tokenized split with `input_ids` and `label`)."""

    def __init__(self, model, tokenizer, dataset, num_labels: int, name: str = "model", batch_size: int = 64):
        self.model, self.tokenizer, self.dataset = model, tokenizer, dataset
        self.num_labels, self.name, self.batch_size = num_labels, name, batch_size

    @property
    def device(self):
        return next(self.model.parameters()).device

    def _batches(self, rows, batch_size: int):
        from transformers import DataCollatorWithPadding

        collate = DataCollatorWithPadding(self.tokenizer)
        keep = [c for c in ("input_ids", "attention_mask", "token_type_ids") if c in rows.column_names]
        for start in range(0, len(rows), batch_size):
            chunk = rows[start:start + batch_size]
            features = [{k: chunk[k][i] for k in keep} for i in range(len(chunk["input_ids"]))]
            yield {k: v.to(self.device) for k, v in collate(features).items()}

    def predict(self) -> np.ndarray:
        """Logits for every row of the data set, batch by batch, in order."""
        import torch

        self.model.eval()
        out = []
        with torch.inference_mode():
            for batch in self._batches(self.dataset, self.batch_size):
                out.append(self.model(**batch).logits.float().cpu().numpy())
        return np.concatenate(out)

    def compute_metrics(self) -> dict[str, float]:
        predictions = self.predict().argmax(-1)
        return classification_metrics(predictions, self.dataset["label"], self.num_labels)

    def compute_size(self) -> dict[str, float]:
        """Parameters and the size of the saved weights (safetensors) in MB."""
        params = sum(p.numel() for p in self.model.parameters())
        with tempfile.TemporaryDirectory() as tmp:
            self.model.save_pretrained(tmp)
            size = sum(p.stat().st_size for p in Path(tmp).glob("*.safetensors"))
        return {"parameters": params, "size_mb": size / 2**20}

    def time_pipeline(self, n_single: int = 20, warmup: int = 3) -> dict[str, float]:
        """Median and p90 latency (ms per review) at batch 1, and reviews/s at the benchmark's batch size."""
        import torch

        rows = self.dataset.select(range(min(len(self.dataset), n_single + warmup)))
        singles = list(self._batches(rows, 1))
        times = []
        with torch.inference_mode():
            for i, batch in enumerate(singles):
                start = time.perf_counter()
                self.model(**batch)
                if self.device.type == "cuda":
                    torch.cuda.synchronize()
                if i >= warmup:
                    times.append((time.perf_counter() - start) * 1000)
            start = time.perf_counter()
            n = 0
            for batch in self._batches(self.dataset.select(range(min(len(self.dataset), 4 * self.batch_size))),
                                       self.batch_size):
                self.model(**batch)
                n += batch["input_ids"].shape[0]
            if self.device.type == "cuda":
                torch.cuda.synchronize()
            throughput = n / (time.perf_counter() - start)
        return {"latency_ms_median": statistics.median(times),
                "latency_ms_p90": float(np.percentile(times, 90)), "reviews_per_second": throughput}

    def run_benchmark(self, size: bool = True, latency: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = {"name": self.name, **self.compute_metrics()}
        if size:
            result.update(self.compute_size())
        if latency:
            result.update(self.time_pipeline())
        return result


def benchmark_result(model, tokenizer, dataset, config, num_labels: int) -> dict[str, Any]:
    """The fields a configuration's result JSON gets from the benchmark (prefixed `benchmark_`)."""
    bench = PerformanceBenchmark(model, tokenizer, dataset, num_labels, config.configuration, config.eval_batch_size)
    measured = bench.run_benchmark(size=False)
    return {f"benchmark_{k}": v for k, v in measured.items() if k != "name"}
