"""The training-speed benchmark on the tiny random BERT: what it writes and how it builds batches (no timing
assertions: timings on a shared CI machine prove nothing)."""

import json

import pytest
from conftest import torch_threads

from bertpeft import profile_config
from bertpeft.config import ConfigError


@pytest.fixture
def one_thread():
    """One torch thread, as the benchmark's --threads 1 sets it, restored afterwards for the other tests."""
    with torch_threads(1):
        yield


@pytest.fixture(scope="module")
def bench():
    from bertpeft.speed import SpeedBench

    return SpeedBench(profile_config("smoke"), device="cpu", steps=2)


def bench_run(tmp_path, **extra):
    """The speed benchmark on the smoke profile, one repeat of one step unless `extra` says otherwise."""
    from bertpeft.speed import run_speed_benchmark

    return run_speed_benchmark(profile_config("smoke"), **{"repeats": 1, "steps": 1, "output": tmp_path, **extra})


@pytest.mark.slow
def test_benchmark_writes_json_with_positive_numbers(tmp_path, capsys, one_thread):
    from bertpeft.speed import PHASES

    sections = ["recipes", "configurations", "freezing"]  # the notebook's smoke run covers the others
    path = bench_run(tmp_path, threads=1, clock="cpu", sections=",".join(sections))
    assert path == tmp_path / "training_speed-smoke-cpu.json"
    result = json.loads(path.read_text())
    for key in (
        "kind",
        "benchmark",
        "reviews",
        "device",
        "versions",
        "git",
        "run_config",
        "sections",
        "matmul_peak_flops_per_second",
        "targets",
        "total_params",
    ):
        assert key in result
    assert result["benchmark"]["clock"] == "cpu" and result["benchmark"]["threads"] == 1
    assert result["versions"]["torch"] and result["run_config"]["profile"] == "smoke"
    assert list(result["sections"]) == sections
    assert set(result["sections"]["configurations"]["setups"]) == {"none", "head", "head+1", "head+2", "lora", "full"}
    assert result["matmul_peak_flops_per_second"]["fp32"] > 0
    for section in result["sections"].values():
        assert section["setups"][section["reference"]]["relative_step_time"] == pytest.approx(1.0)
        for summary in section["setups"].values():
            assert summary["step_seconds"] > 0 and summary["samples_per_second"] > 0
            assert summary["flops_per_step"] > 0 and summary["achieved_flops_per_second"] > 0
            assert summary["memory"]["counted"]["total_mb"] > 0
            assert set(summary["phase_seconds"]) == set(PHASES)
        assert len(section["steps"]) == len(section["setups"])  # 1 repeat x 1 timed batch each
    recipes = result["sections"]["recipes"]["setups"]
    assert (
        recipes["write-ups' recipe"]["padding"] == "max_length" and recipes["write-ups' recipe"]["sampler"] == "random"
    )
    assert recipes["ours"]["padding"] == "dynamic" and recipes["ours"]["sampler"] == "group_by_length"
    assert set(result["targets"]) == {
        "ours_over_seeds_samples_per_second",
        "lora_over_full_step_time",
        "head_over_full_step_time",
    }
    printed = capsys.readouterr().out
    assert "[recipes]" in printed and "[configurations]" in printed and "wrote" in printed


def test_seeds_recipe_pads_every_batch_to_max_length_and_ours_does_not(bench):
    from bertpeft.speed import OURS, SEEDS, make_recipe

    max_length = bench.config.max_length
    seeds = bench.batches(make_recipe(SEEDS, bench.config, "cpu"), 16)
    ours = bench.batches(make_recipe(OURS, bench.config, "cpu"), 16)
    from transformers import DataCollatorWithPadding

    collate = DataCollatorWithPadding(bench.tokenizer)
    seed_widths = [collate(seeds.rows(p))["input_ids"].shape[1] for p in range(len(seeds.batches))]
    our_widths = [collate(ours.rows(p))["input_ids"].shape[1] for p in range(len(ours.batches))]
    assert seed_widths == [max_length] * len(seeds.batches) == seeds.widths
    assert our_widths == ours.widths and max(our_widths) < max_length
    assert sum(our_widths) < sum(seed_widths)
    # every batch is as wide as its longest review, and length grouping keeps the batches narrower than random order
    assert all(w == max(len(f["input_ids"]) for f in ours.rows(p)) for p, w in enumerate(our_widths))
    assert ours.padded_over_real < seeds.padded_over_real


def test_our_recipe_uses_the_samplers_the_trainer_builds(bench, tmp_path):
    from transformers import Trainer
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from bertpeft.speed import OURS, SEEDS, make_recipe, make_sampler
    from bertpeft.training import runtime_for, training_arguments

    features = bench.features("dynamic")
    for group_by_length, recipe in ((True, OURS), (False, SEEDS)):
        config = bench.config.replace(group_by_length=group_by_length, output=str(tmp_path))
        trainer = Trainer(
            model=bench.base,
            args=training_arguments(config, runtime_for(config, "fp32", [])),
            train_dataset=features,
            eval_dataset=features,
            processing_class=bench.tokenizer,
        )
        ours = make_sampler(make_recipe(recipe, config, "cpu"), features, 16, seed=0)
        assert type(ours) is type(trainer._get_train_sampler())
    assert isinstance(make_sampler(make_recipe(OURS, bench.config, "cpu"), features, 16, 0), LengthGroupedSampler)


def test_counts_are_exact_quadratics_of_the_width(bench):
    import copy

    from bertpeft.speed import Setup, configure_model, counted_step, counts_by_width

    for name in ("full", "lora", "head+1"):
        model = configure_model(bench.base, bench.config, Setup(name, name))
        fitted = counts_by_width(model, 4, trains=True)(40)
        direct = counted_step(copy.deepcopy(model).to("meta"), 4, 40, trains=True)
        assert fitted["flops"] == pytest.approx(direct["flops"], rel=1e-9)
        assert fitted["saved_bytes"] == pytest.approx(direct["saved_bytes"], rel=1e-9)
    full = counts_by_width(configure_model(bench.base, bench.config, Setup("full")), 4, True)(40)["flops"]
    head = counts_by_width(configure_model(bench.base, bench.config, Setup("head", "head")), 4, True)(40)["flops"]
    assert head < full / 2  # no backward through the frozen encoder


def test_head_plus_n_trains_the_top_layers_unless_asked_for_the_bottom(bench):
    from bertpeft.models import encoder_layers
    from bertpeft.speed import Setup, configure_model

    def trains(layer):
        return any(p.requires_grad for p in layer.parameters())

    top = encoder_layers(configure_model(bench.base, bench.config, Setup("top", "head+1")))
    bottom = encoder_layers(configure_model(bench.base, bench.config, Setup("bottom", "head+1", layers="bottom")))
    assert [trains(layer) for layer in top] == [False, True]
    assert [trains(layer) for layer in bottom] == [True, False]


def test_the_no_dropout_diagnostic_zeroes_every_dropout_and_only_that(bench):
    import torch

    from bertpeft.speed import Setup, configure_model

    def rates(model):
        return [m.p for m in model.modules() if isinstance(m, torch.nn.Dropout)]

    kept = configure_model(bench.base, bench.config, Setup("lora", "lora"))
    dropped = configure_model(bench.base, bench.config, Setup("lora, no dropout", "lora", dropout=False))
    assert any(rates(kept)) and not any(rates(dropped))
    assert any("lora_dropout" in name for name, _ in dropped.named_modules())  # PEFT's adapter dropout included
    assert [n for n, p in kept.named_parameters() if p.requires_grad] == [
        n for n, p in dropped.named_parameters() if p.requires_grad
    ]
    batch = {"input_ids": torch.randint(5, 100, (2, 12)), "attention_mask": torch.ones(2, 12, dtype=torch.long)}
    dropped.train()
    torch.testing.assert_close(dropped(**batch).logits, dropped(**batch).logits)  # no randomness left in training


def test_bad_benchmark_settings_fail_before_any_work(tmp_path):
    with pytest.raises(ConfigError, match="unknown section"):
        bench_run(tmp_path, sections="recipes,nope")
    with pytest.raises(ConfigError, match="at least 1"):
        bench_run(tmp_path, repeats=0)
    with pytest.raises(ConfigError, match="clock"):
        from bertpeft.speed import SpeedBench

        SpeedBench(profile_config("smoke"), device="cpu", clock="sundial")


def test_lora_batch_section_times_lora_at_one_two_and_four_times_the_batch_against_full():
    from bertpeft.speed import section_setups

    config = profile_config("smoke").replace(train_batch_size=8)
    setups, reference = section_setups("lora_batch", config, "cpu")
    assert reference == "full batch 8"
    assert [(s.label, s.configuration, s.batch_size) for s in setups] == [
        ("full batch 8", "full", None),
        ("lora batch 8", "lora", 8),
        ("lora batch 16", "lora", 16),
        ("lora batch 32", "lora", 32),
    ]


def test_the_benchmark_runs_frozen_layers_as_the_frozen_dropout_setting_says(bench):
    """A setup without its own choice follows the run's `frozen_dropout` (default false: the frozen embeddings and
    layers in eval mode, as bertpeft trains); the freezing section names both ways explicitly."""
    from bertpeft.models import encoder_layers
    from bertpeft.speed import Setup, Trainee, section_setups

    def modes(config, setup):
        bench.config = config
        model = Trainee(bench, setup, warmup=False).model
        return [model.bert.embeddings.training] + [layer.training for layer in encoder_layers(model)]

    default = bench.config
    try:
        assert not default.frozen_dropout
        assert modes(default, Setup("head+1", "head+1")) == [False, False, True]  # the top layer trains
        assert modes(default.replace(frozen_dropout=True), Setup("head+1", "head+1")) == [True, True, True]
        setups, _ = section_setups("freezing", default, "cpu")
        heads = {s.label: s for s in setups if s.configuration == "head"}
        assert modes(default, heads["head, frozen layers with dropout"]) == [True, True, True]
        assert modes(default.replace(frozen_dropout=True), heads["head, frozen layers without dropout"]) == [
            False,
            False,
            False,
        ]
    finally:
        bench.config = default
