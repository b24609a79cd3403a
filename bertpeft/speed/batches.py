"""The reviews a benchmark reads and the epoch batches it draws from them, as the Trainer's sampler would."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..config import ConfigError
from ..data import DataError, load_reviews, resolve_data_source
from .setups import Recipe


# ------------------------------------------------------------------------------------------------ reviews and batches
def read_reviews(data: str, n: int, seed: int) -> tuple[list[str], list[int]]:
    """`n` reviews drawn at random (seeded) from the training file of `data`: a CSV, Parquet or JSON Lines file, or
    a folder with one (the smoke fixture too). Label and text only; no `datasets` needed for local files."""
    import pandas as pd

    source = resolve_data_source(data)
    if source.kind == "hub":
        train = load_reviews(data)["train"]
        frame = pd.DataFrame({"label": train["label"], "text": train["text"]})
    else:
        path = Path(source.files["train"])
        readers = {
            ".csv": pd.read_csv,
            ".tsv": lambda p: pd.read_csv(p, sep="\t"),
            ".parquet": pd.read_parquet,
            ".jsonl": lambda p: pd.read_json(p, lines=True),
            ".json": lambda p: pd.read_json(p, lines=True),
        }
        frame = readers[path.suffix.lower()](path)
        missing = {"label", "text"} - set(frame.columns)
        if missing:
            raise DataError(f"{path} has no {sorted(missing)} column(s): the columns must be label,text")
    frame = frame[frame["text"].notna() & (frame["text"].astype(str).str.strip() != "")]
    picked = np.random.default_rng(seed).permutation(len(frame))[:n]
    return frame["text"].astype(str).iloc[picked].tolist(), frame["label"].astype(int).iloc[picked].tolist()


def encode_reviews(tokenizer, texts: list[str], labels: list[int], max_length: int, padding: str) -> list[dict]:
    """Token features as `data.tokenize_reviews` makes them (the write-ups pad to `max_length` here, we do not)."""
    encoded = tokenizer(
        texts, truncation=True, max_length=max_length, padding="max_length" if padding == "max_length" else False
    )
    keys = [k for k in ("input_ids", "token_type_ids", "attention_mask") if k in encoded]
    return [{**{k: encoded[k][i] for k in keys}, "label": labels[i]} for i in range(len(texts))]


def make_sampler(recipe: Recipe, features: list[dict], batch_size: int, seed: int):
    """The sampler the Trainer builds for this recipe: `RandomSampler`, or `LengthGroupedSampler` for
    `train_sampling_strategy="group_by_length"` (shuffled mega-batches of 50 batches, each sorted by length)."""
    import torch

    generator = torch.Generator().manual_seed(seed)
    if recipe.sampler == "group_by_length":
        from transformers.trainer_pt_utils import LengthGroupedSampler

        return LengthGroupedSampler(batch_size, lengths=[len(f["input_ids"]) for f in features], generator=generator)
    return torch.utils.data.RandomSampler(features, generator=generator)


@dataclass
class EpochBatches:
    """One epoch of batches as the Trainer would draw them, and the few we time."""

    recipe: Recipe
    batch_size: int
    features: list[dict]
    batches: list[list[int]]  # review indices of each batch, in the sampler's order
    widths: list[int]  # padded width of each batch after collation
    timed: list[int]  # positions in `batches` of the timed batches

    def rows(self, position: int) -> list[dict]:
        return [self.features[i] for i in self.batches[position]]

    def tokens(self, position: int) -> tuple[int, int]:
        """(real, padded) tokens of one batch."""
        batch = self.batches[position]
        return sum(len([m for m in self.features[i]["attention_mask"] if m]) for i in batch), self.widths[
            position
        ] * len(batch)

    @property
    def padded_over_real(self) -> float:
        """Tokens the model reads per real token over the whole epoch (1.0 = no padding)."""
        real, padded = zip(*(self.tokens(p) for p in range(len(self.batches))))
        return sum(padded) / max(sum(real), 1)


def epoch_batches(features: list[dict], recipe: Recipe, batch_size: int, steps: int, seed: int) -> EpochBatches:
    """The epoch's batches and `steps` timed ones: full batches at evenly spaced quantiles of the padded width, a
    stratified sample whose mean step time estimates the epoch's."""
    order = list(make_sampler(recipe, features, batch_size, seed))
    batches = [order[i : i + batch_size] for i in range(0, len(order), batch_size)]
    multiple = recipe.pad_to_multiple_of or 1
    widths = [-(-max(len(features[i]["input_ids"]) for i in b) // multiple) * multiple for b in batches]
    full = sorted((w, p) for p, w in enumerate(widths) if len(batches[p]) == batch_size)
    if not full:
        raise ConfigError(f"fewer than {batch_size} reviews: raise --n-train or lower --train-batch-size")
    timed = [full[min(int((j + 0.5) * len(full) / steps), len(full) - 1)][1] for j in range(steps)]
    return EpochBatches(recipe, batch_size, features, batches, widths, timed)
