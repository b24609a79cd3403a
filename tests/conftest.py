"""Test settings: no Hub, no W&B servers, a private cache, and paths to the shared real data when present."""

import os
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["WANDB_MODE"] = "offline"
os.environ.setdefault("WANDB_SILENT", "true")
os.environ.pop("WANDB_API_KEY", None)
os.environ["TOKENIZERS_PARALLELISM"] = "false"

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    """The tiny random BERT is built once per session into a temporary cache."""
    os.environ["BERTPEFT_CACHE"] = str(tmp_path_factory.mktemp("bertpeft-cache"))


@pytest.fixture
def shared_data():
    if not (SHARED_DATA / "yelp_polarity" / "train.csv").exists():
        pytest.skip(f"real Yelp data not found at {SHARED_DATA} (the ../shared folder beside the checkout)")
    return SHARED_DATA


@pytest.fixture
def smoke_config(tmp_path):
    from bertpeft import profile_config

    return profile_config("smoke", output=str(tmp_path / "run"), progress="lines")
