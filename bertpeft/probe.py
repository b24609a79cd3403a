"""`embeddings+logreg`: the baseline that trains no network at all. The pretrained encoder stays frozen; each review
becomes the mean of its token embeddings (the encoder's last layer, padding left out: how sentence-embedding
checkpoints such as all-MiniLM-L6-v2 are meant to be read); a scikit-learn logistic regression on the standardised
embeddings of the training reviews is the classifier, its regularisation strength C chosen on the validation
reviews. The fitted regression is then written into a plain linear layer on top of the encoder (`MeanPooledProbe`),
so the trained model answers like every other configuration's: the Trainer's evaluation, the independent benchmark,
the saved weights and the explorer all use it unchanged.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .config import PROBE, ConfigError
from .data import MODEL_INPUTS, length_order

# Regularisation strengths tried (scikit-learn's C: smaller is stronger), chosen by validation accuracy.
C_GRID = (0.01, 0.1, 1.0, 10.0, 100.0)
# Without a validation split the choice would be made on the test reviews: scikit-learn's default instead.
C_WITHOUT_VALIDATION = 1.0


def embed_split(probe, rows, tokenizer, batch_size: int, label: str, bar: bool) -> np.ndarray:
    """Mean-pooled embeddings of every row of a tokenized split, in row order (computed in batches of similar
    length, so each pads to its own longest review)."""
    import torch
    from tqdm.auto import tqdm
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(tokenizer)
    keep = [c for c in MODEL_INPUTS if c in rows.column_names]
    order = length_order(rows)
    ordered = rows.select(order)
    out = []
    probe.eval()
    starts = range(0, len(ordered), batch_size)
    with torch.inference_mode():
        for start in tqdm(starts, desc=f"embedding the {label} reviews", disable=not bar, leave=False):
            chunk = ordered[start : start + batch_size]
            batch = collate([{k: chunk[k][i] for k in keep} for i in range(len(chunk["input_ids"]))])
            out.append(probe.embed(**{k: v.to(probe.device) for k, v in batch.items()}).float().cpu().numpy())
    embeddings = np.empty((len(rows), out[0].shape[1]), dtype=np.float32)
    embeddings[order] = np.concatenate(out)
    return embeddings


def fit_logistic_regression(x, y, c: float):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)).fit(x, y)


def fold_into_linear(pipeline, linear, num_labels: int) -> None:
    """Write a fitted StandardScaler + LogisticRegression into `linear`, so that `linear(x)` gives logits whose
    softmax is the regression's probabilities (binary: logits 0 and the regression's decision value)."""
    import torch

    scaler, regression = pipeline[0], pipeline[-1]
    coef = regression.coef_ / scaler.scale_  # the scaling moved onto the weights...
    intercept = regression.intercept_ - coef @ scaler.mean_  # ...and the centring onto the bias
    classes = [int(c) for c in regression.classes_]
    weight = np.zeros((num_labels, coef.shape[1]))
    bias = np.full(num_labels, -1e4)  # a label the training reviews never had is never predicted
    if len(classes) == 2 and coef.shape[0] == 1:
        weight[classes[1]], bias[classes[1]], bias[classes[0]] = coef[0], intercept[0], 0.0
    else:
        weight[classes], bias[classes] = coef, intercept
    with torch.no_grad():
        linear.weight.copy_(torch.as_tensor(weight, dtype=linear.weight.dtype))
        linear.bias.copy_(torch.as_tensor(bias, dtype=linear.bias.dtype))


def fit_probe(probe, data, tokenizer, batch_size: int, num_labels: int, bar: bool, say=print) -> dict[str, Any]:
    """Embed the training (and validation) reviews with the frozen encoder, fit the logistic regression at each C of
    `C_GRID`, keep the best on the validation reviews and write it into `probe.probe`. Returns the timings (all of
    it counts as training: `train_seconds`) and the choice of C with each C's validation accuracy."""
    started = time.perf_counter()
    labels = np.asarray(data["train"]["label"])
    if len(set(labels.tolist())) < 2:
        raise ConfigError(f"{PROBE} needs training reviews of at least two labels: use more training reviews")
    x = embed_split(probe, data["train"], tokenizer, batch_size, "training", bar)
    validation = "validation" in data
    if validation:
        x_val = embed_split(probe, data["validation"], tokenizer, batch_size, "validation", bar)
    embed_seconds = time.perf_counter() - started
    say(f"embedded {len(x):,} training reviews in {embed_seconds:.1f} s", flush=True)
    grid, best = [], None
    if validation:
        y_val = np.asarray(data["validation"]["label"])
        for c in C_GRID:
            fitted = fit_logistic_regression(x, labels, c)
            accuracy = float(np.mean(fitted.predict(x_val) == y_val))
            grid.append({"C": c, "validation_accuracy": accuracy})
            if best is None or accuracy > best[0]:
                best = (accuracy, c, fitted)
        say(f"logistic regression: C = {best[1]:g} chosen on the validation split", flush=True)
    else:
        best = (None, C_WITHOUT_VALIDATION, fit_logistic_regression(x, labels, C_WITHOUT_VALIDATION))
        say(f"logistic regression: no validation split, so C = {C_WITHOUT_VALIDATION:g} (scikit-learn's default)")
    fold_into_linear(best[2], probe.probe, num_labels)
    seconds = time.perf_counter() - started
    return {
        "train_seconds": seconds,
        "train_samples_per_second": len(x) / max(seconds, 1e-9),
        "train_steps": 0,
        "embed_seconds": embed_seconds,
        "fit_seconds": seconds - embed_seconds,
        "probe_c": best[1],
        "probe_c_grid": grid or None,
    }
