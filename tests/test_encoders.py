"""Every configuration on every BERT-family encoder: tiny random BERT, DistilBERT, RoBERTa, DeBERTa-v2, ELECTRA and
ModernBERT, each saved as a pretrained encoder without a classification head (what the Hub holds), with the smoke
profile's WordPiece tokenizer. What the expected values rest on is written here, per architecture, independently of
bertpeft: the encoder's layer list, the LoRA targets, and what `from_pretrained` reports as newly initialised."""

import csv
import json
from pathlib import Path

import pytest
from conftest import run_bertpeft, torch_threads

from bertpeft.config import CONFIGURATIONS, METHODS, ConfigError, profile_config
from bertpeft.fixtures import SMOKE_DATA, TINY_SHAPE
from bertpeft.models import apply_configuration, load_base_model, model_skeleton

ROOT = Path(__file__).resolve().parents[1]
SIZE = {**TINY_SHAPE, "intermediate_size": 37}  # the tiny shape, with an FFN width no other module has
ENCODERS = {
    # model type: (extra config, where its layer list sits, the projections LoRA wraps by default)
    "bert": ({}, "bert.encoder.layer", ("query", "value")),
    "distilbert": ({"hidden_dim": 37}, "distilbert.transformer.layer", ("q_lin", "v_lin")),
    "roberta": ({"max_position_embeddings": 130}, "roberta.encoder.layer", ("query", "value")),
    "deberta-v2": (  # DeBERTa-v3's attention: relative positions, none added to the input
        {"relative_attention": True, "position_biased_input": False, "pos_att_type": ["p2c", "c2p"]},
        "deberta.encoder.layer",
        ("query_proj", "value_proj"),
    ),
    "electra": ({"embedding_size": 16}, "electra.encoder.layer", ("query", "value")),
    "modernbert": ({}, "model.layers", ("Wqkv",)),
}


def smoke_tokenizer():
    from transformers import BertTokenizerFast

    return BertTokenizerFast(vocab=str(SMOKE_DATA / "vocab.txt"), do_lower_case=True, model_max_length=128)


def save_encoder(folder: Path, model_type: str) -> Path:
    """A tiny random `model_type` encoder, saved the way pretrained encoders are: no classification head."""
    import torch
    from transformers import AutoConfig, AutoModel

    tokenizer = smoke_tokenizer()
    ids = {f"{t}_token_id": tokenizer.convert_tokens_to_ids(f"[{t.upper()}]") for t in ("pad", "cls", "sep")}
    ids |= {"bos_token_id": ids["cls_token_id"], "eos_token_id": ids["sep_token_id"]}
    settings = {"vocab_size": len(tokenizer), "max_position_embeddings": 128, **SIZE, **ids}
    config = AutoConfig.for_model(model_type, **settings | ENCODERS[model_type][0])
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny models run fastest on one thread: two threads on 2 busy cores made each step 10-100x slower."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def encoders(tmp_path_factory):
    root = tmp_path_factory.mktemp("encoders")
    return {name: save_encoder(root / name, name) for name in ENCODERS}


def loaded(folder):
    """The encoder with a 2-label head, as `from_pretrained` reports it: (model, the keys it initialised anew)."""
    from transformers import AutoModelForSequenceClassification
    from transformers.utils import logging

    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            str(folder), num_labels=2, output_loading_info=True
        )
    finally:
        logging.set_verbosity(verbosity)
    return model, set(info["missing_keys"])


def sizes(model, names):
    shapes = dict(model.named_parameters())
    return sum(shapes[n].numel() for n in names)


def trainable_names(model):
    return {n for n, p in model.named_parameters() if p.requires_grad}


def expected_counts(model_type, folder, r=4):
    """Each configuration's trainable count from the loaded model's shapes, the loading report and ENCODERS."""
    _, layer_list, targets = ENCODERS[model_type]
    model, new = loaded(folder)
    total = sizes(model, [n for n, _ in model.named_parameters()])
    head = sizes(model, new)
    layers = model.get_submodule(layer_list)
    top = [sum(p.numel() for p in layer.parameters()) for layer in reversed(layers)]
    adapters = sum(
        r * (m.in_features + m.out_features) for n, m in model.named_modules() if n.rpartition(".")[2] in targets
    )
    assert adapters, f"{model_type} has {targets}"
    counts = {"none": 0, "head": head, "head+1": head + top[0], "head+2": head + top[0] + top[1]}
    return counts | {"lora": head + adapters, "full": total}, total


@pytest.mark.parametrize("model_type", ENCODERS)
def test_params_counts_every_configuration(encoders, model_type, capsys):
    from bertpeft.cli import main

    assert main(["params", "--model", str(encoders[model_type]), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    expected, total = expected_counts(model_type, encoders[model_type])
    assert [row["config"] for row in rows] == list(CONFIGURATIONS)
    assert {row["config"]: row["trainable_params"] for row in rows} == expected
    assert {row["total_params"] for row in rows} == {total}


def test_params_cli_on_distilbert(encoders):
    """The same through `bertpeft params` in its own process, on the encoder whose every name differs from BERT's
    (pre_classifier in the head, transformer.layer, q_lin/v_lin)."""
    done = run_bertpeft("params", "--model", encoders["distilbert"], "--json", timeout=120)
    assert done.returncode == 0, done.stderr
    rows = {row["config"]: row["trainable_params"] for row in json.loads(done.stdout)}
    assert rows == expected_counts("distilbert", encoders["distilbert"])[0]


@pytest.mark.parametrize("model_type", ENCODERS)
def test_head_trains_what_loading_reports_as_newly_initialised(encoders, model_type):
    model, new = loaded(encoders[model_type])
    assert new and not any(n.startswith(ENCODERS[model_type][1]) for n in new)
    assert trainable_names(apply_configuration(model, profile_config("smoke", configuration="head"))) == new
    lora = apply_configuration(loaded(encoders[model_type])[0], profile_config("smoke", configuration="lora"))
    copies = {n for n in trainable_names(lora) if "lora_" not in n}
    assert {n.removeprefix("base_model.model.").replace(".modules_to_save.default", "") for n in copies} == new


def smoke_batch(folder, n=8):
    from transformers import AutoTokenizer

    with open(SMOKE_DATA / "train.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))[:n]
    batch = AutoTokenizer.from_pretrained(str(folder))(
        [r["text"] for r in rows], truncation=True, max_length=64, padding=True, return_tensors="pt"
    )
    import torch

    batch["labels"] = torch.tensor([int(r["label"]) for r in rows])
    assert len(set(batch["labels"].tolist())) == 2, "both classes in the batch"
    return dict(batch)


def one_step(model, batch, lr, what) -> set[str]:
    """One AdamW step on `batch` (its loss finite); the names of the parameters it changed."""
    import torch

    model.train()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    loss = model(**batch).loss
    assert torch.isfinite(loss), what
    loss.backward()
    optimizer.step()
    return {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}


@pytest.mark.parametrize("model_type", ENCODERS)
def test_every_configuration_takes_an_optimizer_step(encoders, model_type):
    """One AdamW step on smoke reviews: only trainable weights move, and among them the head, the top N layers of
    head+N (no other layer), LoRA's B matrices (they start at zero, so only B has a gradient on the first step)
    and, in full, the embeddings."""

    folder, layer_list = encoders[model_type], ENCODERS[model_type][1]
    batch = smoke_batch(folder)
    _, new = loaded(folder)
    for name in CONFIGURATIONS:
        config = profile_config("smoke", configuration=name, lora_dropout=0.0)
        model = apply_configuration(load_base_model(str(folder), 2), config)
        trainable = trainable_names(model)
        if name == "none":
            assert not trainable
            continue
        changed = one_step(model, batch, config.learning_rate_for, (model_type, name))
        assert changed <= trainable, (model_type, name, changed - trainable)
        heads = {n.replace(".modules_to_save.default", "").removeprefix("base_model.model.") for n in changed}
        assert new <= heads, (model_type, name, "the head moves")
        if name.startswith("head+"):
            top = {f"{layer_list}.{i}." for i in range(2 - int(name[5:]), 2)}
            moved = {n.removeprefix(layer_list + ".").partition(".")[0] for n in changed - new}
            assert {f"{layer_list}.{i}." for i in moved} == top, (model_type, name, changed - new)
        if name == "lora":
            assert {n for n in changed if "lora_B" in n} == {n for n in trainable if "lora_B" in n}
        if name == "full":
            assert any(".embeddings." in n for n in changed), (model_type, "the embeddings move")


PREFIX_ENCODERS = {"bert", "roberta", "electra"}  # their attention takes past keys and values (prefix tuning)


@pytest.mark.parametrize("model_type", ENCODERS)
def test_every_method_is_counted_and_takes_an_optimizer_step(encoders, model_type, capsys):
    """BitFit and each PEFT method on each encoder: `bertpeft params` counts it, the newly initialised head trains
    beside it, and one AdamW step moves only trainable weights, the method's own among them (LoRA's B, VeRA's b and
    FourierFT's coefficients start at zero: a method wired to nothing would leave them). Prefix tuning needs an
    attention that takes past keys and values: on the other encoders it is refused in one line naming prompt tuning,
    whose embeddings take the width of the word embeddings (ELECTRA's are narrower than its layers)."""

    from bertpeft.cli import main

    folder = encoders[model_type]
    names = [m for m in METHODS if m != "prefix" or model_type in PREFIX_ENCODERS]
    if model_type == "modernbert":  # no bias terms in its layers: BitFit is refused (test below)
        names.remove("bitfit")
    assert main(["params", "--model", str(folder), "--configs", ",".join(names), "--json"]) == 0
    counted = {row["config"]: row["trainable_params"] for row in json.loads(capsys.readouterr().out)}
    _, new = loaded(folder)
    batch = smoke_batch(folder)
    for name in names:
        model = apply_configuration(load_base_model(str(folder), 2), profile_config("smoke", configuration=name))
        trainable = trainable_names(model)
        assert counted[name] == sum(p.numel() for p in model.parameters() if p.requires_grad), (model_type, name)
        # PEFT's names: base_model.model.<name> (base_model.<name> for the prompt methods), the head as copies
        unwrapped = {n.removeprefix("base_model.").removeprefix("model.") for n in trainable}
        heads = {n.replace(".modules_to_save.default", "") for n in unwrapped}
        assert new <= heads, (model_type, name, "the head trains")
        changed = one_step(model, batch, 1e-3, (model_type, name))
        assert changed <= trainable, (model_type, name, changed - trainable)
        assert [n for n in changed if "modules_to_save" not in n and n not in new], (model_type, name, "the method")
    if model_type not in PREFIX_ENCODERS:
        capsys.readouterr()  # the loading bars of the trainings above
        assert main(["params", "--model", str(folder), "--configs", "prefix"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "past keys and values" in err and "use prompt" in err, err


@pytest.mark.parametrize("model_type", ENCODERS)
def test_embeddings_logreg_reads_the_mean_of_the_last_hidden_states(encoders, model_type, capsys):
    """The probe on each encoder: counted as one weight row and a bias per label, and its embedding is the mean of
    the encoder's last hidden states over the review's tokens, computed here with plain transformers."""
    import torch
    from transformers import AutoModel

    from bertpeft.cli import main

    folder = encoders[model_type]
    assert main(["params", "--model", str(folder), "--configs", "embeddings+logreg", "--json"]) == 0
    (row,) = json.loads(capsys.readouterr().out)
    assert row["trainable_params"] == SIZE["hidden_size"] * 2 + 2
    config = profile_config("smoke", configuration="embeddings+logreg")
    probe = apply_configuration(load_base_model(str(folder), 2), config).eval()
    assert trainable_names(probe) == {"probe.weight", "probe.bias"}
    batch = {k: v for k, v in smoke_batch(folder).items() if k != "labels"}
    encoder = AutoModel.from_pretrained(str(folder)).eval()
    with torch.no_grad():
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"]
        expected = torch.stack([hidden[i, mask[i].bool()].mean(0) for i in range(len(hidden))])
        assert torch.allclose(probe.embed(**batch), expected, atol=1e-5), model_type


def test_bitfit_on_an_encoder_without_bias_terms_is_refused_in_one_line(encoders, capsys):
    """ModernBERT's layers have no bias terms (attention_bias, mlp_bias and norm_bias are off): BitFit would train the
    head alone."""
    from bertpeft.cli import main

    assert main(["params", "--model", str(encoders["modernbert"]), "--configs", "bitfit"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no bias terms" in err and "use head" in err, err


@pytest.fixture(scope="module")
def albert(tmp_path_factory):
    """An encoder bertpeft knows neither the layer list (ALBERT shares one layer group) nor LoRA targets of."""
    from transformers import AutoConfig

    folder = tmp_path_factory.mktemp("albert")
    AutoConfig.for_model("albert", vocab_size=99, embedding_size=16, **SIZE).save_pretrained(folder)
    return folder


def test_head_plus_n_on_an_unknown_layer_list_is_one_line_naming_where_it_looked(albert, capsys):
    from bertpeft.cli import main

    assert main(["params", "--model", str(albert), "--json"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "AlbertModel" in err
    assert "encoder.layer, transformer.layer, layers" in err and "head, lora or full" in err
    head = apply_configuration(model_skeleton(str(albert)), profile_config("smoke", configuration="head"))
    assert trainable_names(head) == {"classifier.weight", "classifier.bias"}, "head needs no layer list"


def test_lora_on_a_model_type_without_default_targets(albert):
    with pytest.raises(ConfigError, match=r"no default LoRA targets for model type 'albert'.*'query'.*'value'"):
        apply_configuration(model_skeleton(str(albert)), profile_config("smoke", configuration="lora"))
    named = profile_config("smoke", configuration="lora", lora_target_modules="query,value")
    names = trainable_names(apply_configuration(model_skeleton(str(albert)), named))
    assert any(".query.lora_A." in n for n in names) and any(".value.lora_B." in n for n in names)
