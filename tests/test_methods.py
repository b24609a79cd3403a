"""The parameter-efficient methods beyond LoRA as configurations: exact trainable-parameter counts (by hand on
bert-base-cased's shape, and against the same methods built directly with PEFT), and each one trains."""

import json
import math
import warnings

import pytest
from conftest import run_bertpeft

from bertpeft import profile_config
from bertpeft.config import METHODS, ConfigError, check_configuration

H, LAYERS, FFN, HEAD = 768, 12, 3072, 2 * 768 + 2  # bert-base-cased; the 2-label head: weight and bias
TARGETS = LAYERS * 2  # query and value in each layer
R = 4  # the lora_r default

BY_HAND = {
    "lora": TARGETS * 2 * H * R,  # A (r x 768) and B (768 x r) per target
    "lora-r1": TARGETS * 2 * H * 1,
    "lora-r16": TARGETS * 2 * H * 16,
    "lora-r64": TARGETS * 2 * H * 64,
    "rslora": TARGETS * 2 * H * R,  # the same weights, another scaling
    "dora": TARGETS * (2 * H * R + H),  # plus a magnitude per output feature
    "adalora": TARGETS * (2 * H * 6 + 6),  # starts at rank 6 (1.5 x 4): A, B and the singular values E
    "loha": TARGETS * 2 * (2 * H * R),  # two low-rank pairs, multiplied element-wise
    "vera": TARGETS * (H + 256),  # two scaling vectors: one per output feature, one per rank of the shared matrices
    "fourierft": TARGETS * 1000,  # 1000 spectral coefficients per matrix
    # rescaling vectors on key and value, and on the input of each "output.dense" PEFT names: the feed-forward
    # output's (3072) and, matched by the same suffix, the attention output's (768)
    "ia3": LAYERS * (H + H + H + FFN),
    "bitfit": LAYERS * (7 * H + FFN)
    + H
    + H,  # per layer q, k, v, attention out, 2 LayerNorms, ffn in and out; emb LN, pooler
    "prefix": LAYERS * 2 * H * 20,  # a key and a value vector per virtual token in each layer
    "prompt": H * 20,  # 20 virtual token embeddings
}


@pytest.fixture(scope="module")
def bert_base_cased_shape(tmp_path_factory):
    from transformers import BertConfig

    folder = tmp_path_factory.mktemp("bert-base-cased-shape")
    BertConfig(vocab_size=28996).save_pretrained(folder)
    return folder


def test_params_counts_every_method_on_bert_base_as_counted_by_hand(bert_base_cased_shape):
    names = ",".join(BY_HAND)
    done = run_bertpeft("params", "--model", bert_base_cased_shape, "--configs", names, "--json")
    assert done.returncode == 0, done.stderr[-2000:]
    counted = {row["config"]: row["trainable_params"] for row in json.loads(done.stdout)}
    assert counted == {name: n + HEAD for name, n in BY_HAND.items()}
    assert {row["total_params"] for row in json.loads(done.stdout)} == {108_311_810}


def tiny_bert():
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    return BertForSequenceClassification(
        BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64)
    )


def built_directly(name: str):
    """The method as a PEFT user writes it, without bertpeft, on the same tiny BERT."""
    import peft
    from peft import TaskType

    common = {"task_type": TaskType.SEQ_CLS, "modules_to_save": ["classifier"]}
    qv = ["query", "value"]
    configs = {
        "dora": peft.LoraConfig(r=4, lora_alpha=8, target_modules=qv, use_dora=True, **common),
        "rslora": peft.LoraConfig(r=4, lora_alpha=8, target_modules=qv, use_rslora=True, **common),
        "lora-r16": peft.LoraConfig(r=16, lora_alpha=32, target_modules=qv, **common),
        "adalora": peft.AdaLoraConfig(init_r=6, target_r=4, target_modules=qv, total_step=6, **common),
        "loha": peft.LoHaConfig(r=4, alpha=8, target_modules=qv, **common),
        "lokr": peft.LoKrConfig(r=4, alpha=8, target_modules=qv, **common),
        "vera": peft.VeraConfig(r=256, target_modules=qv, **common),
        "fourierft": peft.FourierFTConfig(n_frequency=1000, target_modules=qv, **common),
        "ia3": peft.IA3Config(**common),
        "prefix": peft.PrefixTuningConfig(num_virtual_tokens=20, **common),
        "prompt": peft.PromptTuningConfig(num_virtual_tokens=20, **common),
    }
    model = tiny_bert()
    if name == "bitfit":
        model.requires_grad_(False)
        for n, p in model.named_parameters():
            p.requires_grad_(n.endswith(".bias") or n.startswith("classifier."))
        return model
    with warnings.catch_warnings():  # peft 0.21 on transformers 5: a deprecation notice that is theirs
        warnings.simplefilter("ignore", FutureWarning)
        return peft.get_peft_model(model, configs[name])


@pytest.mark.parametrize("name", [m for m in METHODS] + ["lora-r16"])
def test_each_method_trains_what_peft_built_directly_trains(name):
    from bertpeft.models import apply_configuration, trainable_parameters

    config = profile_config("smoke", configuration=name, n_train=96, train_batch_size=16, epochs=1.0)
    ours = apply_configuration(tiny_bert(), config)
    theirs = built_directly(name)
    assert trainable_parameters(ours) == trainable_parameters(theirs) > 0
    trained = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert trained == {n for n, p in theirs.named_parameters() if p.requires_grad}


@pytest.mark.slow
def test_every_method_trains_on_the_smoke_reviews_and_writes_its_result(tmp_path):
    """One short training of each method (the smoke profile: a tiny BERT, 96 reviews, 6 steps) in one process;
    each writes a result with finite losses and its trainable-parameter count."""
    from bertpeft.training import train_configuration

    for name in [*METHODS, "lora-r16"]:
        config = profile_config("smoke", configuration=name, output=str(tmp_path / "run"), progress="lines")
        result = train_configuration(config, benchmark=False)
        assert result["train_steps"] == 6, name
        assert all(math.isfinite(point["loss"]) for point in result["loss_curve"]), name
        assert result["trainable_params"] > 66 and result["learning_rate"] == config.learning_rate_for, name


def test_an_unknown_method_is_refused_naming_the_methods():
    with pytest.raises(ConfigError, match="ia3") as refused:
        check_configuration("qlora")
    assert "lora-rN" in str(refused.value) and "bitfit" in str(refused.value)
