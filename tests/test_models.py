"""The six configurations as models: which weights train, and the brief's exact parameter counts."""

import json

import pytest
from conftest import run_bertpeft

from bertpeft.config import ConfigError, profile_config
from bertpeft.models import apply_configuration, configuration_table, parameter_report

BRIEF_TRAINABLE = {
    "none": 0,
    "head": 1_538,
    "head+1": 7_089_410,
    "head+2": 14_177_282,
    "lora": 148_994,
    "full": 108_311_810,
}
BERT_BASE_CASED_TOTAL = 108_311_810


@pytest.fixture(scope="module")
def bert_base_cased_shape(tmp_path_factory):
    """bert-base-cased's architecture (config only, no weights): all `bertpeft params` needs."""
    from transformers import BertConfig

    folder = tmp_path_factory.mktemp("bert-base-cased-shape")
    BertConfig(vocab_size=28996).save_pretrained(folder)
    return folder


def tiny_model(layers=4, num_labels=2):
    import torch
    from transformers import BertForSequenceClassification

    from bertpeft.fixtures import tiny_bert_config

    torch.manual_seed(0)
    config = tiny_bert_config(
        vocab_size=99, hidden_size=16, num_hidden_layers=layers, intermediate_size=32, max_position_embeddings=64,
        num_labels=num_labels,
    )  # fmt: skip
    return BertForSequenceClassification(config)


def trainable_names(model):
    return {name for name, p in model.named_parameters() if p.requires_grad}


def test_params_cli_prints_the_briefs_counts(bert_base_cased_shape):
    done = run_bertpeft("params", "--model", bert_base_cased_shape, "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [row["config"] for row in rows] == list(BRIEF_TRAINABLE)
    assert {row["config"]: row["trainable_params"] for row in rows} == BRIEF_TRAINABLE
    assert {row["total_params"] for row in rows} == {BERT_BASE_CASED_TOTAL}


def test_params_table_for_five_labels(bert_base_cased_shape):
    rows = {row["config"]: row for row in configuration_table(str(bert_base_cased_shape), num_labels=5)}
    head = 768 * 5 + 5
    layer = 7_087_872  # one bert-base encoder layer, as the brief states
    assert rows["head"]["trainable_params"] == head
    assert rows["head+2"]["trainable_params"] == head + 2 * layer
    assert rows["lora"]["trainable_params"] == 147_456 + head
    assert rows["lora"]["adapter_params"] == 147_456
    assert rows["full"]["trainable_params"] == rows["full"]["total_params"] == BERT_BASE_CASED_TOTAL + 3 * 769


@pytest.mark.parametrize("n", [1, 2, 3])
def test_head_plus_n_unfreezes_the_top_n_layers_and_the_head(n):
    model = apply_configuration(tiny_model(layers=4), profile_config("smoke", configuration=f"head+{n}"))
    names = trainable_names(model)
    layers = {name.split(".")[3] for name in names if name.startswith("bert.encoder.layer.")}
    assert layers == {str(i) for i in range(4 - n, 4)}, "the layers nearest the head"
    assert {"classifier.weight", "classifier.bias"} <= names
    assert all(name.startswith(("classifier.", "bert.encoder.layer.")) for name in names), "pooler stays frozen"
    full_layer = {name for name, _ in model.named_parameters() if name.startswith("bert.encoder.layer.3.")}
    assert full_layer <= names, "the whole layer trains, not part of it"


def test_head_trains_only_the_classifier():
    model = apply_configuration(tiny_model(), profile_config("smoke", configuration="head"))
    assert trainable_names(model) == {"classifier.weight", "classifier.bias"}


def test_none_trains_nothing_and_full_trains_everything():
    assert not trainable_names(apply_configuration(tiny_model(), profile_config("smoke", configuration="none")))
    model = apply_configuration(tiny_model(), profile_config("smoke", configuration="full"))
    assert trainable_names(model) == {name for name, _ in model.named_parameters()}


def test_lora_trains_adapters_and_one_copy_of_the_head():
    model = tiny_model(layers=2)
    total = sum(p.numel() for p in model.parameters())
    report = parameter_report(model, profile_config("smoke", configuration="lora", lora_r=4))
    names = trainable_names(report["model"])
    assert names, "LoRA trains something"
    assert all(".lora_A." in n or ".lora_B." in n or "classifier.modules_to_save." in n for n in names)
    assert any("query.lora_A" in n for n in names) and any("value.lora_B" in n for n in names)
    assert not any("key.lora" in n for n in names)
    # 2 layers x (query, value) x (16x4 + 4x16) adapter weights, plus one trainable head (16x2 + 2)
    assert report["adapter_params"] == 2 * 2 * (16 * 4 + 4 * 16)
    assert report["trainable_params"] == report["adapter_params"] + 16 * 2 + 2
    assert report["total_params"] == total


def test_adding_lora_prints_no_upstream_deprecation_warning():
    import warnings

    from bertpeft.models import add_lora

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)  # PEFT 0.21 on transformers 5 warns on every PeftModel
        model = add_lora(tiny_model(layers=2), profile_config("smoke", configuration="lora"))
    assert type(model).__name__.startswith("PeftModel")


def test_lora_target_module_the_model_lacks():
    config = profile_config("smoke", configuration="lora", lora_target_modules=("query", "q_proj"))
    with pytest.raises(ConfigError, match="q_proj"):
        apply_configuration(tiny_model(), config)


def test_more_layers_than_the_model_has():
    with pytest.raises(ConfigError, match=r"head\+5 asks for 5 encoder layers but the model has 2"):
        apply_configuration(tiny_model(layers=2), profile_config("smoke", configuration="head+5"))


def test_missing_model_folder_is_named(tmp_path):
    from bertpeft.models import resolve_model_source

    with pytest.raises(ConfigError, match="no such model folder"):
        resolve_model_source(str(tmp_path / "absent"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_model_source(str(tmp_path / "empty"))


@pytest.mark.parametrize("frozen_dropout", [True, False])
def test_frozen_dropout_false_runs_the_frozen_layers_in_eval_mode(frozen_dropout):
    """head+1 on a tiny BERT in train mode, the same batch twice: with frozen_dropout False the embeddings and the
    frozen lower layer give the same output both times (no dropout) while the trained top layer still drops out;
    with True (the Trainer's way) every layer drops out."""
    import torch
    from transformers import BertForSequenceClassification

    from bertpeft.fixtures import tiny_bert_config
    from bertpeft.models import apply_configuration, keep_frozen_parts_in_eval

    torch.manual_seed(0)
    config = tiny_bert_config(
        vocab_size=99, intermediate_size=37, max_position_embeddings=512, hidden_dropout_prob=0.5,
        attention_probs_dropout_prob=0.5,
    )  # fmt: skip
    model = apply_configuration(BertForSequenceClassification(config), profile_config("smoke", configuration="head+1"))
    if not frozen_dropout:
        keep_frozen_parts_in_eval(model)
    outputs = {}
    for i, layer in enumerate([model.bert.embeddings, *model.bert.encoder.layer]):
        layer.register_forward_hook(lambda m, a, out, i=i: outputs.setdefault(i, []).append(
            (out[0] if isinstance(out, tuple) else out).detach().clone()
        ))  # fmt: skip
    ids = torch.randint(5, 99, (4, 12))
    for _ in range(2):
        model.train()  # as the Trainer does before every step
        model(input_ids=ids, labels=torch.tensor([0, 1, 0, 1])).loss.backward()
    same = {i: torch.equal(*runs) for i, runs in outputs.items()}
    assert same == {0: not frozen_dropout, 1: not frozen_dropout, 2: False}
