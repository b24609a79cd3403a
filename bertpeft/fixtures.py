"""What ships with the package: the made-up review fixture, and the tiny random BERT built from its vocabulary.

The smoke profile trains that tiny model on that fixture, so the whole notebook series runs in CI in a minute or
two with nothing downloaded.
"""

from __future__ import annotations

import os
from pathlib import Path

SMOKE_DATA = Path(__file__).resolve().parent / "resources" / "smoke"
TINY_BERT = "tiny-random-bert"


def cache_dir() -> Path:
    return Path(os.environ.get("BERTPEFT_CACHE", Path.home() / ".cache" / "bertpeft"))


def tiny_bert() -> Path:
    """The tiny random BERT's folder in the cache, built on first use (a changed recipe builds a new one)."""
    return build_tiny_bert(cache_dir() / f"{TINY_BERT}-{fixture_version()}")


def fixture_version() -> str:
    """Short hash of the fixture vocabulary and of this builder: a changed recipe builds a new cached model."""
    import hashlib

    recipe = (SMOKE_DATA / "vocab.txt").read_bytes() + TINY_BERT_RECIPE.encode()
    return hashlib.sha256(recipe).hexdigest()[:10]


# The tiny BERT's shape: the smoke model's, and the one tests build models of (tiny_bert_config).
TINY_SHAPE = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
TINY_BERT_RECIPE = "hidden=32 layers=2 heads=2 intermediate=64 positions=128 vocab=fixture"


def tiny_bert_config(**settings):
    """A `BertConfig` of the tiny shape (TINY_SHAPE, 128 positions), `settings` overriding any of it."""
    from transformers import BertConfig

    return BertConfig(**{**TINY_SHAPE, "max_position_embeddings": 128, **settings})


def build_tiny_bert(folder: Path, seed: int = 0) -> Path:
    """A 2-layer, 32-wide random BERT with the smoke fixture's WordPiece vocabulary, saved like a Hub model."""
    if (folder / "model.safetensors").exists() and (folder / "tokenizer_config.json").exists():
        return folder
    import shutil
    import tempfile

    import torch
    from transformers import BertForSequenceClassification, BertTokenizerFast

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".tiny-"))
    # transformers 5 silently ignores vocab_file= (every word then becomes [UNK]): the vocabulary goes in vocab=
    tokenizer = BertTokenizerFast(vocab=str(SMOKE_DATA / "vocab.txt"), do_lower_case=True, model_max_length=128)
    config = tiny_bert_config(vocab_size=tokenizer.vocab_size)
    torch.manual_seed(seed)
    with quiet_progress():
        BertForSequenceClassification(config).bert.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    if (folder / "model.safetensors").exists() and (folder / "tokenizer_config.json").exists():
        shutil.rmtree(tmp, ignore_errors=True)  # another process (e.g. a second rank) finished first: keep its copy
        return folder
    if folder.exists():  # a partial folder from an interrupted build
        shutil.rmtree(folder)
    try:
        tmp.rename(folder)
    except OSError:  # another process built it first
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


class quiet_progress:
    """Silence transformers' progress bars (e.g. "Writing model shards") for a block."""

    def __enter__(self):
        from transformers.utils import logging as hf_logging

        self.was_enabled = hf_logging.is_progress_bar_enabled()
        hf_logging.disable_progress_bar()

    def __exit__(self, *exc):
        from transformers.utils import logging as hf_logging

        if self.was_enabled:
            hf_logging.enable_progress_bar()
