"""LoRA export: the adapter alone and merged, equal logits, loadable by plain peft/transformers in a fresh process."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import a_result, tiny_classifier
from safetensors.torch import load_file, save_file

from bertpeft import profile_config
from bertpeft.cards import ADAPTER_FOLDER as ADAPTER
from bertpeft.cards import MERGED_FOLDER as MERGED
from bertpeft.cli import main
from bertpeft.export import (
    VERIFICATION,
    ExportError,
    base_model_source,
    export_dir,
    export_lora,
    find_lora_run,
    held_out_reviews,
    load_adapter_on_base,
    load_run_model,
    max_abs_diff,
    review_logits,
    save_merged,
)

# peft 0.21 calls a transformers method that transformers 5 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")

NLPTOWN_LABELS = {0: "1 star", 1: "2 stars", 2: "3 stars", 3: "4 stars", 4: "5 stars"}


def strengthen_lora(weights_file):
    """Two training steps leave LoRA's B matrices (initialised at 0) near zero; give every LoRA matrix large random
    values, as `init_lora_weights=False` does, so a merge that drops or mis-scales them would show."""
    import torch

    mode = os.stat(weights_file).st_mode  # kept: a test reads the mode bertpeft gave the file
    state = load_file(str(weights_file))
    generator = torch.Generator().manual_seed(0)
    for name, tensor in state.items():
        if "lora_" in name:
            state[name] = torch.randn(tensor.shape, generator=generator) * 0.3
    save_file(state, str(weights_file))
    os.chmod(weights_file, mode)


@pytest.fixture(scope="module")
def lora_run(tmp_path_factory):
    """A trained smoke `lora` configuration with strong LoRA weights, exported with `bertpeft export`; the model and
    the data come from local folders (the data: a copy of the made-up smoke reviews), under umask 022."""
    from bertpeft.fixtures import SMOKE_DATA
    from bertpeft.training import train_configuration

    folder = tmp_path_factory.mktemp("export")
    data = folder / "my-reviews"
    data.mkdir()
    for split in ("train", "test"):
        shutil.copy(SMOKE_DATA / f"{split}.csv", data / f"{split}.csv")
    config = profile_config(
        "smoke",
        model=str(tiny_classifier(folder / "model")),
        data=str(data),
        configuration="lora",
        output=str(folder / "run"),
        n_train=32,
        n_test=32,
        progress="lines",
    )
    umask = os.umask(0o022)
    try:
        train_configuration(config, benchmark=False)
        strengthen_lora(config.run_dir / "models" / "lora-seed42" / "trained.safetensors")
        assert main(["export", "--output", str(config.run_dir), "--reviews", "16"]) == 0
    finally:
        os.umask(umask)
    return config


def test_adapter_folder_holds_adapter_head_and_tokenizer(lora_run):
    adapter = export_dir(lora_run.run_dir) / ADAPTER
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["task_type"] == "SEQ_CLS" and config["r"] == lora_run.lora_r
    assert config["base_model_name_or_path"] == "model"  # a local folder: by its name, not its path
    keys = set(load_file(str(adapter / "adapter_model.safetensors")))
    assert {"base_model.model.classifier.weight", "base_model.model.classifier.bias"} <= keys
    assert any("lora_A" in k for k in keys) and any("lora_B" in k for k in keys)
    assert not any("attention.self.key" in k or "word_embeddings" in k for k in keys)  # base weights stay out
    assert (adapter / "tokenizer.json").exists() and (adapter / "tokenizer_config.json").exists()
    assert "PeftModel.from_pretrained" in (adapter / "README.md").read_text()


def test_merged_folder_is_a_plain_labelled_model(lora_run):
    merged = export_dir(lora_run.run_dir) / MERGED
    config = json.loads((merged / "config.json").read_text())
    assert config["id2label"] == {"0": "negative", "1": "positive"}
    assert config["label2id"] == {"negative": 0, "positive": 1}
    keys = set(load_file(str(merged / "model.safetensors")))
    assert "classifier.weight" in keys and not any("lora_" in k or "base_layer" in k for k in keys)
    assert not (merged / "adapter_config.json").exists() and (merged / "tokenizer.json").exists()
    card = (merged / "README.md").read_text()
    result = json.loads((lora_run.run_dir / "results" / "lora-seed42.json").read_text())
    assert f"| {result['accuracy']:.4f} |" in card and "merge_and_unload()" in card


def test_merge_changed_the_weights_and_kept_the_logits(lora_run):
    verification = json.loads((export_dir(lora_run.run_dir) / VERIFICATION).read_text())
    assert verification["passed"] and verification["same_predictions"]
    assert max(verification["max_abs_diff"].values()) <= 1e-4
    assert verification["pipeline"]["readable"] and verification["pipeline"]["agrees"]
    assert set(verification["pipeline"]["labels"]) <= {"negative", "positive"}
    base = load_file(str(lora_run.model + "/model.safetensors"))
    merged = load_file(str(export_dir(lora_run.run_dir) / MERGED / "model.safetensors"))
    name = "bert.encoder.layer.0.attention.self.query.weight"
    assert (merged[name] - base[name]).abs().max() > 0.1  # the LoRA update is in the merged weights


def test_adapter_is_far_smaller_than_the_merged_model(lora_run):
    verification = json.loads((export_dir(lora_run.run_dir) / VERIFICATION).read_text())
    assert verification["adapter_mb"] * 10 < verification["merged_mb"]


PLAIN_CODE = r"""
import json, sys
import torch
from peft import PeftConfig, PeftModel
from transformers import AutoModelForSequenceClassification, AutoTokenizer, pipeline

adapter_dir, merged_dir, base_dir, task_file, out_file = sys.argv[1:6]
task = json.load(open(task_file))
merged = AutoModelForSequenceClassification.from_pretrained(merged_dir).eval()
labels = merged.config.id2label
# adapter_config.json names a local base by its folder's name: the user loads it from where they keep it
assert PeftConfig.from_pretrained(adapter_dir).base_model_name_or_path == base_dir.rstrip("/").split("/")[-1]
base = AutoModelForSequenceClassification.from_pretrained(
    base_dir, num_labels=len(labels), id2label=labels, label2id=merged.config.label2id, ignore_mismatched_sizes=True)
with_adapter = PeftModel.from_pretrained(base, adapter_dir).eval()
batch = AutoTokenizer.from_pretrained(adapter_dir)(task["texts"], truncation=True, max_length=task["max_length"],
                                                   padding=True, return_tensors="pt")
with torch.inference_mode():
    logits = {"adapter": with_adapter(**batch).logits.tolist(), "merged": merged(**batch).logits.tolist()}
classify = pipeline("text-classification", model=merged_dir, device="cpu")
predicted = [p["label"] for p in classify(task["texts"], truncation=True, max_length=task["max_length"])]
json.dump({"logits": logits, "labels": predicted, "bertpeft": any(m.startswith("bertpeft") for m in sys.modules)},
          open(out_file, "w"))
"""


def test_plain_code_in_a_fresh_process_gets_the_trained_logits(lora_run, tmp_path):
    trained = find_lora_run(lora_run.run_dir)
    test, tokenizer = held_out_reviews(trained, 8)
    texts = list(test["text"])
    expected = review_logits(load_run_model(trained), tokenizer, texts, lora_run.max_length)
    (tmp_path / "task.json").write_text(json.dumps({"texts": texts, "max_length": lora_run.max_length}))
    out = export_dir(lora_run.run_dir)
    subprocess.run(
        [
            sys.executable,
            "-c",
            PLAIN_CODE,
            str(out / ADAPTER),
            str(out / MERGED),
            lora_run.model,
            "task.json",
            "out.json",
        ],
        cwd=tmp_path,
        check=True,
        timeout=300,
        capture_output=True,
    )
    fresh = json.loads((tmp_path / "out.json").read_text())
    assert not fresh["bertpeft"]
    assert max_abs_diff(fresh["logits"]["adapter"], expected) <= 1e-4
    assert max_abs_diff(fresh["logits"]["merged"], expected) <= 1e-4
    assert fresh["labels"] == [trained.id2label[i] for i in expected.argmax(-1)]
    assert np.abs(expected).max() > 0.1  # logits of a real size: agreement within 1e-4 means something


def test_merge_equivalence_with_init_lora_weights_false(tmp_path):
    """peft's own recipe: LoRA weights non-zero from the start, saved, reloaded onto a fresh base, merged."""
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model_dir = tiny_classifier(tmp_path / "model")
    lora = LoraConfig(
        task_type=TaskType.SEQ_CLS, r=8, lora_alpha=16, target_modules=["query", "value"], init_lora_weights=False
    )
    get_peft_model(AutoModelForSequenceClassification.from_pretrained(model_dir), lora).save_pretrained(tmp_path / "a")
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    texts = ["the food was amazing and the staff friendly", "awful service, we will not come back", "okay"]
    with_adapter = load_adapter_on_base(tmp_path / "a", 2, {0: "negative", 1: "positive"})
    adapter_logits = review_logits(with_adapter, tokenizer, texts, 64)
    with with_adapter.disable_adapter():
        base_logits = review_logits(with_adapter, tokenizer, texts, 64)
    save_merged(with_adapter, tokenizer, tmp_path / "merged")
    merged = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged")
    assert max_abs_diff(review_logits(merged, tokenizer, texts, 64), adapter_logits) <= 1e-4
    assert max_abs_diff(base_logits, adapter_logits) > 1e-2


def test_base_model_source_names_a_real_folder_or_a_hub_id():
    source = base_model_source("tiny-random-bert")
    assert Path(source).is_absolute() and (Path(source) / "config.json").exists()
    assert base_model_source("nlptown/bert-base-multilingual-uncased-sentiment") == (
        "nlptown/bert-base-multilingual-uncased-sentiment"
    )


def test_no_exported_file_holds_a_path_of_this_machine(lora_run):
    local = {
        "the environment": sys.prefix,
        "the base model's folder": str(Path(lora_run.model).resolve()),
        "the data folder": str(Path(lora_run.data).resolve()),
        "the run folder": str(lora_run.run_dir.resolve()),
        "the package": str(Path(__file__).resolve().parents[1]),
    }
    files = [p for p in export_dir(lora_run.run_dir).rglob("*") if p.is_file()]
    assert len(files) > 8 and {p.name for p in files} >= {"adapter_config.json", "README.md", VERIFICATION}
    found = [f"{p.name}: {what}" for p in files for what, path in local.items() if path.encode() in p.read_bytes()]
    assert not found, found
    verification = json.loads((export_dir(lora_run.run_dir) / VERIFICATION).read_text())
    assert (verification["adapter_dir"], verification["merged_dir"], verification["base_model"]) == (
        ADAPTER,
        MERGED,
        "model",
    )
    card = (export_dir(lora_run.run_dir) / MERGED / "README.md").read_text()
    assert "reviews of `my-reviews`" in card and "Base model `model`" in card
    adapter_card = (export_dir(lora_run.run_dir) / ADAPTER / "README.md").read_text()
    assert "base_model:" not in adapter_card  # the card's metadata links a Hub id only
    assert 'from_pretrained(\n    "path/to/model"' in adapter_card


def test_exported_and_result_files_are_readable_by_others_under_umask_022(lora_run):
    written = [
        lora_run.run_dir / "results" / "lora-seed42.json",
        lora_run.run_dir / "models" / "lora-seed42" / "trained.safetensors",
        *(p for p in export_dir(lora_run.run_dir).rglob("*") if p.is_file()),
    ]
    modes = {p.relative_to(lora_run.run_dir).as_posix(): p.stat().st_mode & 0o777 for p in written}
    assert all(mode & 0o044 == 0o044 for mode in modes.values()), modes


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path, umask):
    from bertpeft.layout import atomic_write_json

    before = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "r.json", {"accuracy": 0.5})
    finally:
        os.umask(before)
    assert (tmp_path / "r.json").stat().st_mode & 0o777 == 0o666 & ~umask


def test_published_names_are_hub_ids_or_names_never_paths(tmp_path):
    from bertpeft.data import published_data_name
    from bertpeft.models import published_model_name

    (tmp_path / "my-bert").mkdir()
    assert published_model_name("minilm") == "sentence-transformers/all-MiniLM-L6-v2"
    assert published_model_name("bert-base-cased") == "bert-base-cased"
    assert published_model_name("nlptown/bert-base-multilingual-uncased-sentiment") == (
        "nlptown/bert-base-multilingual-uncased-sentiment"
    )
    assert published_model_name(str(tmp_path / "my-bert")) == "my-bert"
    assert published_model_name("tiny-random-bert") == "tiny-random-bert"
    assert published_data_name("yelp_polarity") == "fancyzhx/yelp_polarity"
    assert published_data_name(str(tmp_path / "my-bert") + "/") == "my-bert"
    assert published_data_name("smoke") == "smoke"


def test_cards_of_a_minilm_run_name_its_hub_id(tmp_path):
    from bertpeft.cards import adapter_card, model_card
    from bertpeft.layout import TrainedRun
    from bertpeft.models import resolve_model_source
    from bertpeft.result import Result

    data = tmp_path / "reviews"
    data.mkdir()
    config = profile_config("quick", configuration="lora", data=str(data), output=str(tmp_path / "run"))
    result = Result(
        name="lora-seed42", config="lora", seed=42, profile="quick", model="minilm", trainable_params=10,
        total_params=99, accuracy=0.9, precision=0.9, recall=0.9, f1=0.9, num_labels=2,
        id2label={"0": "neg", "1": "pos"}, run_config=config.to_dict(),
    )  # fmt: skip
    trained = TrainedRun(tmp_path / "run", result, config)
    verification = {
        "base_model": "sentence-transformers/all-MiniLM-L6-v2",
        "max_abs_diff": {"merged_vs_adapter": 0.0, "adapter_vs_trained": 0.0},
        **{"adapter_mb": 1.0, "merged_mb": 90.0, "reviews": 8, "tolerance": 1e-4, "method": "LoRA: r=4"},
    }
    cards = adapter_card(trained, "sentence-transformers/all-MiniLM-L6-v2", "LoRA: r=4") + model_card(
        trained, verification
    )
    assert "base_model: sentence-transformers/all-MiniLM-L6-v2" in cards
    assert 'from_pretrained(\n    "sentence-transformers/all-MiniLM-L6-v2"' in cards
    assert "`reviews`" in cards and str(data) not in cards and resolve_model_source("minilm") not in cards


def test_a_run_without_lora_is_refused(tmp_path, capsys):
    run = tmp_path / "run"
    config = profile_config("smoke", configuration="none", output=str(run))
    (run / "results").mkdir(parents=True)
    (run / "results" / "none-seed42.json").write_text(json.dumps(a_result(config).to_dict()))
    with pytest.raises(
        ExportError,
        match=r"no trained lora configuration .*bertpeft train --profile smoke "
        r"--config lora --output ",
    ):
        export_lora(run)
    assert main(["export", "--output", str(tmp_path / "empty")]) == 2
    assert "lora-seed*.json" in capsys.readouterr().err


def test_experiment_b_profile_offline(shared_data, tmp_path):
    """Experiment B's profile on the local 5-class reviews with a 5-label model built here: the data's labels are
    nlptown's (label = stars - 1), `none` keeps the model's own head (zero-shot), `lora` trains and exports."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    from bertpeft.data import load_prepared
    from bertpeft.models import load_tokenizer
    from bertpeft.training import train_configuration

    model_dir = tiny_classifier(tmp_path / "five", 5, NLPTOWN_LABELS)
    config = profile_config(
        "experiment-b",
        model=str(model_dir),
        data=str(shared_data / "yelp_review_full"),
        n_train=24,
        n_test=20,
        max_length=64,
        eval_batch_size=8,
        output=str(tmp_path / "run"),
        progress="lines",
    )
    assert config.configurations == ("none", "lora") and (config.lora_r, config.lora_alpha) == (16, 32)
    none = train_configuration(config.replace(configuration="none"), benchmark=False)
    assert {int(k): v for k, v in none.id2label.items()} == NLPTOWN_LABELS
    test = load_prepared(config, load_tokenizer(config.model))[0]["test"]
    own_head = review_logits(
        AutoModelForSequenceClassification.from_pretrained(model_dir),
        AutoTokenizer.from_pretrained(model_dir),
        list(test["text"]),
        64,
    )
    assert none.test_predictions == own_head.argmax(-1).tolist()  # the model's head, not a new random one
    train_configuration(config.replace(configuration="lora"), benchmark=False)
    verification = export_lora(config, n_reviews=8)
    merged = json.loads((export_dir(config.run_dir) / MERGED / "config.json").read_text())
    assert {int(k): v for k, v in merged["id2label"].items()} == NLPTOWN_LABELS
    assert verification["passed"] and set(verification["pipeline"]["labels"]) <= set(NLPTOWN_LABELS.values())
