"""The parameter-efficient methods beyond LoRA as configurations: exact trainable-parameter counts (by hand on
bert-base-cased's shape, and against the same methods built directly with PEFT), each one trains, and each exports:
its adapter reloaded with plain peft and, where the method merges, merged into a plain model, with equal logits."""

import json
import math
import os
import warnings
from pathlib import Path

import pytest
from conftest import run_bertpeft
from safetensors.torch import load_file, save_file

from bertpeft import profile_config
from bertpeft.config import METHODS, PEFT_METHODS, ConfigError, check_configuration
from bertpeft.export import UNMERGEABLE, base_model_source, export_adapter
from bertpeft.layout import RunDir

H, LAYERS, FFN, HEAD = 768, 12, 3072, 2 * 768 + 2  # bert-base-cased; the 2-label head: weight and bias
TARGETS = LAYERS * 2  # query and value in each layer
R = 4  # the lora_r default

BY_HAND = {
    "lora": TARGETS * 2 * H * R,  # A (r x 768) and B (768 x r) per target
    "lora-r1": TARGETS * 2 * H * 1,
    "lora-r16": TARGETS * 2 * H * 16,
    "lora-r64": TARGETS * 2 * H * 64,
    "lora-r16-a8": TARGETS * 2 * H * 16,  # the same weights as lora-r16, at another scale
    "rslora-r16": TARGETS * 2 * H * 16,
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
    "embeddings+logreg": 0,  # only a linear layer on the mean-pooled embeddings: the head's shape, no pooler
    # LoRA started from the weights: LoRA's own shapes
    "pissa": TARGETS * 2 * H * R,
    "olora": TARGETS * 2 * H * R,
    "delora": TARGETS * (2 * H * R + 1),  # LoRA's factors and one trained bound (lambda) per matrix
    "shira": TARGETS * 2 * H * R,  # sparse: as many trained entries per matrix as a rank-4 LoRA has
    # a shared bank of 256 vectors of length 256, and per matrix the top-k logits of each of A's (r x 768/256) and
    # B's (768/256 x r) pieces over the bank
    "vblora": 256 * 256 + TARGETS * 2 * (R * (H // 256) * 256),
    # 768 / 32 = 24 random bases of rank 32 per matrix, each with a trained scaling per rank and per output feature
    "randlora": TARGETS * (H // 32) * (32 + H),
    "miss": TARGETS * 64 * H,  # one shard of 64 rows per matrix
    "oft": TARGETS * (H // 32) * (32 * 31 // 2),  # 24 blocks of 32 x 32, each a skew-symmetric matrix's upper half
    "hra": TARGETS * 8 * H,  # 8 Householder vectors per matrix
    "waveft": TARGETS * 1000,  # 1000 wavelet coefficients per matrix
    "ln_tuning": (1 + 2 * LAYERS) * 2 * H,  # a trained copy of each LayerNorm's scale and shift
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
    from transformers import BertForSequenceClassification

    from bertpeft.fixtures import tiny_bert_config

    torch.manual_seed(0)
    return BertForSequenceClassification(tiny_bert_config(vocab_size=99, max_position_embeddings=512))


@pytest.mark.parametrize(
    ("name", "scale"),
    [("lora", 8 / 4), ("lora-r16", 32 / 16), ("lora-r64", 128 / 64), ("lora-r16-a8", 8 / 16), ("lora-r64-a8", 8 / 64)]
    + [("rslora", 8 / 4**0.5), ("rslora-r16", 8 / 16**0.5), ("rslora-r64", 8 / 64**0.5)],
)
def test_the_rank_sweeps_scale_the_update_three_ways(name, scale):
    """Rank and scale apart: `lora-rN` keeps alpha / r (the update's scale) as the settings' (8 / 4), `lora-rN-aM`
    keeps alpha at M so the scale falls as 1 / r, and `rslora-rN` keeps alpha at the settings' 8 under rsLoRA's
    alpha / sqrt(r). Read from the LoRA layers peft built, the scaling each applies to B·A."""
    from bertpeft.models import apply_configuration

    model = apply_configuration(tiny_bert(), profile_config("smoke", configuration=name))
    scalings = [m.scaling["default"] for n, m in model.named_modules() if n.endswith((".query", ".value"))]
    assert len(scalings) == 4 and scalings == pytest.approx([scale] * 4)  # 2 layers x query, value


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
        "lora-r16-a8": peft.LoraConfig(r=16, lora_alpha=8, target_modules=qv, **common),
        "rslora-r16": peft.LoraConfig(r=16, lora_alpha=8, target_modules=qv, use_rslora=True, **common),
        "adalora": peft.AdaLoraConfig(init_r=6, target_r=4, target_modules=qv, total_step=6, **common),
        "loha": peft.LoHaConfig(r=4, alpha=8, target_modules=qv, **common),
        "lokr": peft.LoKrConfig(r=4, alpha=8, target_modules=qv, **common),
        "vera": peft.VeraConfig(r=256, target_modules=qv, **common),
        "fourierft": peft.FourierFTConfig(n_frequency=1000, target_modules=qv, **common),
        "ia3": peft.IA3Config(**common),
        "prefix": peft.PrefixTuningConfig(num_virtual_tokens=20, **common),
        "prompt": peft.PromptTuningConfig(num_virtual_tokens=20, **common),
        "pissa": peft.LoraConfig(r=4, lora_alpha=8, target_modules=qv, init_lora_weights="pissa", **common),
        "olora": peft.LoraConfig(r=4, lora_alpha=8, target_modules=qv, init_lora_weights="olora", **common),
        "delora": peft.DeloraConfig(r=4, target_modules=qv, **common),
        "shira": peft.ShiraConfig(r=4, target_modules=qv, **common),
        "vblora": peft.VBLoRAConfig(r=4, vector_length=32, target_modules=qv, **common),  # 32: the tiny width
        "randlora": peft.RandLoraConfig(target_modules=qv, **common),
        "miss": peft.MissConfig(r=32, target_modules=qv, **common),
        "oft": peft.OFTConfig(r=0, oft_block_size=32, target_modules=qv, **common),
        "hra": peft.HRAConfig(r=8, target_modules=qv, **common),
        "waveft": peft.WaveFTConfig(n_frequency=1000, target_modules=qv, **common),
        "ln_tuning": peft.LNTuningConfig(target_modules=["LayerNorm"], **common),
    }
    model = tiny_bert()
    if name == "bitfit":
        model.requires_grad_(False)
        for n, p in model.named_parameters():
            p.requires_grad_(n.endswith(".bias") or n.startswith("classifier."))
        return model
    with warnings.catch_warnings():  # peft 0.21 on transformers 5: a deprecation notice that is theirs
        warnings.simplefilter("ignore", FutureWarning)
        warnings.filterwarnings("ignore", message="Unsupported layer type .*LayerNorm")  # LayerNorm tuning's
        return peft.get_peft_model(model, configs[name])


@pytest.mark.parametrize("name", [m for m in METHODS] + ["lora-r16", "lora-r16-a8", "rslora-r16"])
def test_each_method_trains_what_peft_built_directly_trains(name):
    from bertpeft.models import apply_configuration, trainable_parameters

    config = profile_config("smoke", configuration=name, n_train=96, train_batch_size=16, epochs=1.0)
    from bertpeft.models import count_report

    config = profile_config("smoke", configuration=name, n_train=96, train_batch_size=16, epochs=1.0)
    base = tiny_bert()
    total = sum(p.numel() for p in base.parameters())
    ours = apply_configuration(base, config)
    theirs = built_directly(name)
    assert trainable_parameters(ours) == trainable_parameters(theirs) > 0
    trained = {n for n, p in ours.named_parameters() if p.requires_grad}
    assert trained == {n for n, p in theirs.named_parameters() if p.requires_grad}
    # what the method adds, apart from the head (32 x 2 + 2); BitFit trains the model's own biases and adds nothing
    added = count_report(ours, total, name)["adapter_params"]
    assert added == (0 if name == "bitfit" else trainable_parameters(theirs) - (32 * 2 + 2))


TRAINED = ["head", *METHODS, "lora", "lora-r16", "full"]
MERGEABLE = [m for m in [*PEFT_METHODS, "lora-r16"] if m not in UNMERGEABLE]


@pytest.fixture(scope="module")
def methods_run(tmp_path_factory):
    """One short training of each method (the smoke profile: a tiny BERT, 96 reviews, 6 steps) in one process, into
    one run folder; returns the folder and the results."""
    from bertpeft.training import train_configuration

    run_dir = tmp_path_factory.mktemp("methods") / "run"
    results = {}
    for name in TRAINED:
        config = profile_config("smoke", configuration=name, output=str(run_dir), progress="lines")
        results[name] = (config, train_configuration(config, benchmark=False))
    return run_dir, results


@pytest.mark.slow
def test_every_method_trains_on_the_smoke_reviews_and_writes_its_result(methods_run):
    """Each writes a result with finite losses and its trainable-parameter count."""
    run_dir, results = methods_run
    for name, (config, result) in results.items():
        assert result.train_steps == 6, name
        assert all(math.isfinite(point["loss"]) for point in result.loss_curve), name
        assert result.learning_rate == config.learning_rate_for, name
        assert result.trainable_params > 66 or name == "head", name  # more than the head (32 x 2 + 2) alone
        assert (run_dir / "results" / f"{name}-seed42.json").exists()


def strengthen(run_dir: Path, name: str) -> None:
    """Six smoke steps leave most methods near their start (LoRA's B, VeRA's b and FourierFT's coefficients begin
    at 0, IA3's vectors at 1): add large random values to every trained weight of the method (not the head), so an
    export that drops or mis-scales them would show."""
    import torch

    path = RunDir(run_dir).weights(f"{name}-seed42") / "trained.safetensors"
    mode = os.stat(path).st_mode
    state = load_file(str(path))
    generator = torch.Generator().manual_seed(0)
    for key, tensor in state.items():
        if "modules_to_save" not in key:
            state[key] = tensor + torch.randn(tensor.shape, generator=generator) * 0.1
    save_file(state, str(path))
    os.chmod(path, mode)


@pytest.mark.slow
@pytest.mark.parametrize("name", MERGEABLE)
def test_each_method_that_merges_exports_an_adapter_and_a_merged_model_with_equal_logits(methods_run, name):
    import torch

    run_dir, _ = methods_run
    strengthen(run_dir, name)
    v = export_adapter(run_dir, name, n_reviews=16)
    assert v["passed"] and v["pipeline"]["readable"], v
    assert v["max_abs_diff"]["adapter_vs_trained"] <= 1e-4 and v["max_abs_diff"]["merged_vs_adapter"] <= 1e-4
    assert (
        Path(v["adapter_dir"]).name == f"{name}-adapter" and (Path(v["adapter_dir"]) / "adapter_config.json").exists()
    )
    assert (run_dir / "export" / f"verification-{name}.json").exists()
    # the merged folder is a plain model whose encoder weights moved where the method acted
    merged = load_file(str(Path(v["merged_dir"]) / "model.safetensors"))
    base = load_file(str(Path(base_model_source("tiny-random-bert")) / "model.safetensors"))
    assert not [k for k in merged if "lora_" in k or "modules_to_save" in k or "base_layer" in k]
    moved = max((merged[f"bert.{k}"] - t).abs().max().item() for k, t in base.items() if f"bert.{k}" in merged)
    assert moved > 1e-3, name
    card = (Path(v["merged_dir"]) / "README.md").read_text()
    assert v["method"] in card and "merged" in card
    assert torch.isfinite(torch.tensor(v["pipeline"]["scores"])).all()


@pytest.mark.slow
def test_prefix_and_prompt_export_their_adapter_and_say_why_they_cannot_merge(methods_run):
    run_dir, _ = methods_run
    strengthen(run_dir, "prefix")
    done = run_bertpeft("export", "--config", "prefix", "--output", run_dir)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.count("\n") == 1 and "not merged: prefix tuning's trained vectors are extra keys" in done.stdout
    for name in ("prefix", "prompt"):
        v = export_adapter(run_dir, name, n_reviews=16) if name == "prompt" else None
        v = v or json.loads((run_dir / "export" / "verification-prefix.json").read_text())
        assert v["passed"] and v["max_abs_diff"] == {"adapter_vs_trained": pytest.approx(0, abs=1e-4)}, v
        assert v["merge_refused"] == UNMERGEABLE[name] and v["merged_dir"] is None
        assert not (run_dir / "export" / f"{name}-merged").exists()
        card = (run_dir / "export" / f"{name}-adapter" / "README.md").read_text()
        assert f"not merged into a plain model: {UNMERGEABLE[name]}" in card


@pytest.mark.parametrize("name", ["none", "head", "head+1", "full", "bitfit"])
def test_configurations_without_an_adapter_are_refused_by_export_in_one_line(name, tmp_path, capsys):
    from bertpeft.cli import main

    assert main(["export", "--config", name, "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name} " in err and "has no adapter to export" in err and "--config lora" in err
    assert not (tmp_path / "run").exists()


def test_an_unknown_method_is_refused_naming_the_methods():
    with pytest.raises(ConfigError, match="ia3") as refused:
        check_configuration("qlora")
    assert "lora-rN" in str(refused.value) and "bitfit" in str(refused.value)


@pytest.mark.parametrize("name", ["prefix", "prompt"])
def test_virtual_tokens_that_do_not_fit_the_positions_are_refused_before_any_work(name, tmp_path):
    """The smoke model has 128 positions; 20 virtual tokens beside 120 review tokens would index past them."""
    done = run_bertpeft(
        "train", "--profile", "smoke", "--config", name, "--max-length", "120", "--output", tmp_path / "r"
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "--max-length 108 or less" in done.stderr, done.stderr
    assert not (tmp_path / "r").exists()


@pytest.mark.slow
def test_the_methods_notebook_compares_the_run_and_says_what_it_found(methods_run, tmp_path):
    """Notebook 06 on the run folder, as `bertpeft run` executes it: the method table and the Pareto figures, every
    PEFT method exported and timed (prefix and prompt without a merged model), findings worded from the numbers,
    and no warning or traceback in its outputs."""
    import nbformat
    import papermill
    from conftest import notebook_debris

    run_dir, results = methods_run
    notebook = Path(__file__).resolve().parents[1] / "notebooks" / "06_beyond_lora.ipynb"
    papermill.execute_notebook(
        str(notebook), str(tmp_path / "06.ipynb"), parameters={"output": str(run_dir)}, kernel_name="python3",
        progress_bar=False, cwd=str(tmp_path),
    )  # fmt: skip
    executed = nbformat.read(tmp_path / "06.ipynb", as_version=4)
    assert notebook_debris(executed) == []
    figures = {p.stem for p in (run_dir / "figures").glob("methods_*.png")}
    assert figures == {"methods_accuracy_vs_parameters", "methods_accuracy_vs_step_time", "methods_peak_memory"}
    exported = {p.name for p in (run_dir / "export").iterdir()}
    for name in [n for n in results if n not in ("head", "full", "bitfit")]:
        assert f"{name}-adapter" in exported or name == "lora" and "lora-adapter" in exported, name
        assert (f"{name}-merged" in exported) == (name not in UNMERGEABLE) or name == "lora", name
    found = executed["cells"][-1]["outputs"][0]["data"]["text/markdown"]
    best = max(results.values(), key=lambda r: r[1].accuracy)[1]
    assert f"with {best.accuracy:.3f}" in found and "Pareto front" in found and "cannot be merged" in found


def test_takeaways_name_the_configurations_level_with_the_best_and_set_apart_one_whose_seeds_disagree():
    import pandas as pd

    from bertpeft.methods import methods_takeaways

    rows = [  # config, trainable parameters, mean accuracy, 95% interval
        ("full", 1_000_000, 0.91, 0.905, 0.915),
        ("lora-r16", 100_000, 0.903, 0.89, 0.917),
        ("lora", 40_000, 0.88, 0.865, 0.9),
        ("prompt", 8_000, 0.77, 0.60, 0.94),
        ("head", 800, 0.72, 0.71, 0.73),
    ]
    summary = pd.DataFrame(
        [
            {"config": c, "seeds": 3, "trainable_params": n, "accuracy": a, "accuracy_low": lo, "accuracy_high": hi}
            | {"interval": "over 3 seeds", "step_vs_full": None, "peak_memory_mb": None, "train_seconds": None}
            for c, n, a, lo, hi in rows
        ]
    )
    found = methods_takeaways(summary)
    assert "1 other configuration(s) cannot be told apart from it (their intervals overlap): `lora-r16`." in found
    assert "The smallest of them, `lora-r16`, trains 100,000 parameters, 10.0x fewer." in found
    assert "`prompt` (0.770) overlaps it only through its own wide interval (0.600 to 0.940" in found
    assert "`lora`" not in found.split("cannot be told apart")[1].split("\n")[0]


def test_every_method_the_registry_claims_is_in_the_installed_peft():
    """Each PEFT configuration names its peft config class and PEFT type; an upgrade of peft that drops or renames
    one fails here, not in a user's run."""
    import peft

    from bertpeft.configurations import ENTRIES

    claimed = [c for c in ENTRIES if c.uses_peft]
    assert len(claimed) >= 21  # LoRA and 20 other methods or initialisations
    for c in claimed:
        assert c.peft_type in peft.PeftType.__members__, c.name
        assert peft.PEFT_TYPE_TO_CONFIG_MAPPING[peft.PeftType[c.peft_type]] is getattr(peft, c.peft, None), c.name


@pytest.mark.slow
@pytest.mark.parametrize("name", ["pissa", "olora"])
def test_an_adapter_that_changed_the_base_weights_is_exported_as_a_plain_lora_on_the_untouched_base(methods_run, name):
    """PiSSA and OLoRA train on a base they changed (W - B0 A0): the exported adapter is a plain LoRA of twice the
    rank, with the trained head, that gives the trained logits on the base model as published."""
    from peft import PeftConfig

    run_dir, _ = methods_run
    strengthen(run_dir, name)
    v = export_adapter(run_dir, name, n_reviews=16)
    assert v["passed"] and v["max_abs_diff"]["adapter_vs_trained"] <= 1e-4, v
    saved = PeftConfig.from_pretrained(v["adapter_dir"])
    assert saved.init_lora_weights is True and saved.r == 2 * 4 and saved.base_model_name_or_path == "tiny-random-bert"
    weights = load_file(str(Path(v["adapter_dir"]) / "adapter_model.safetensors"))
    assert any("classifier" in k for k in weights) and "plain LoRA of rank 8" in v["method"]


@pytest.mark.parametrize("log", [False, True])
def test_the_labels_of_a_crowded_comparison_figure_do_not_print_over_each_other(log):
    """Twenty configurations within a point of accuracy and close in cost (as a methods run gives): every label of
    the Pareto figure is drawn apart from every other, inside the figure."""
    import numpy as np
    import pandas as pd

    from bertpeft.methods import plot_pareto

    rng = np.random.default_rng(0)
    accuracy = 0.88 + rng.uniform(0, 0.01, 20)
    summary = pd.DataFrame(
        {
            "config": [f"method-{i}" for i in range(20)],
            "trainable_params": np.geomspace(1e4, 1e6, 20) * rng.uniform(0.9, 1.1, 20),
            "accuracy": accuracy,
            "accuracy_low": accuracy - 0.02,
            "accuracy_high": accuracy + 0.02,
        }
    )
    fig = plot_pareto(summary, "trainable_params", "trainable parameters", "crowded", log=log)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text().startswith("method-")]
    assert len(labels) == 20
    boxes = [t.get_window_extent(renderer) for t in labels]
    overlapping = [
        (labels[i].get_text(), labels[j].get_text())
        for i in range(len(boxes))
        for j in range(i + 1, len(boxes))
        if boxes[i].overlaps(boxes[j])
    ]
    assert overlapping == []
    figure_box = fig.bbox
    assert all(figure_box.contains(b.x0, b.y0) and figure_box.contains(b.x1, b.y1) for b in boxes)
