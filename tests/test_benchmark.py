"""PerformanceBenchmark: its own inference loop gives the Trainer's predictions and metrics; size and latency."""

import numpy as np
import pytest
from conftest import tiny_classifier

from bertpeft import profile_config
from bertpeft.benchmark import PerformanceBenchmark, agreement
from bertpeft.metrics import METRICS

# peft 0.21 calls a transformers method that transformers 5 deprecates; not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")


@pytest.fixture(scope="module")
def head_run(tmp_path_factory):
    """`head` trained on the smoke reviews, three evaluation batches (so batch order and grouping matter)."""
    from bertpeft.training import train_configuration

    folder = tmp_path_factory.mktemp("benchmark")
    config = profile_config(
        "smoke",
        model=str(tiny_classifier(folder / "model")),
        configuration="head",
        output=str(folder / "run"),
        n_train=32,
        eval_batch_size=16,
        progress="lines",
    )
    return config, train_configuration(config)


def rebuilt(config):
    from bertpeft.data import id2label_of, load_prepared
    from bertpeft.layout import RunDir
    from bertpeft.models import load_tokenizer, load_trained_model

    tokenizer = load_tokenizer(config.model)
    data, meta = load_prepared(config, tokenizer)
    model = load_trained_model(
        config, RunDir(config).weights(f"head-seed{config.seed}"), meta["num_labels"], id2label_of(meta)
    )
    return model, tokenizer, data["test"], meta["num_labels"]


def test_result_records_benchmark_equal_to_trainer(head_run):
    _, result = head_run
    assert len(set(result.test_predictions)) > 1, "the check needs predictions that differ between reviews"
    for metric in METRICS:
        assert getattr(result, f"benchmark_{metric}") == pytest.approx(getattr(result, metric), abs=1e-12)
    assert result.benchmark_agreement == 1.0


def test_benchmark_predictions_are_the_trainers_in_row_order(head_run):
    config, result = head_run
    model, tokenizer, test, num_labels = rebuilt(config)
    bench = PerformanceBenchmark(
        model, tokenizer, test, num_labels, batch_size=config.eval_batch_size, precision=result.numeric_precision
    )  # in the precision the Trainer computed in (`auto`: bf16 on a CPU with native bf16)
    assert bench.predict().argmax(-1).tolist() == result.test_predictions
    assert bench.compute_metrics() == pytest.approx({k: getattr(result, k) for k in METRICS})


def test_final_evaluation_in_length_order_gives_row_order_predictions_and_metrics(head_run):
    """The Trainer's final evaluation feeds the test reviews sorted by length (less padding): its predictions, labels
    and metrics come back as a row-order `trainer.predict` gives them."""
    from bertpeft.training import make_trainer, predict_by_length, runtime_for

    config, _ = head_run
    model, tokenizer, test, num_labels = rebuilt(config)
    trainer = make_trainer(
        model, config, {"train": test, "validation": test}, tokenizer, runtime_for(config, "fp32", [])
    )
    trainer.args.train_sampling_strategy = "random"  # as after training: the evaluation reads rows in order
    by_length, in_order = predict_by_length(trainer, test), trainer.predict(test, metric_key_prefix="eval")
    assert [len(test[i]["input_ids"]) for i in range(len(test))] != sorted(len(ids) for ids in test["input_ids"])
    assert np.abs(by_length.predictions - in_order.predictions).max() < 1e-5
    assert by_length.label_ids.tolist() == in_order.label_ids.tolist() == test["label"]
    for metric in (*METRICS, "loss"):
        assert by_length.metrics[f"eval_{metric}"] == pytest.approx(in_order.metrics[f"eval_{metric}"], abs=1e-6)


def test_benchmark_batches_by_length_and_returns_logits_in_row_order(head_run):
    """Batches of similar length (less padding), and each review's logits where its row is: the same as running
    every review alone."""
    import torch

    config, _ = head_run
    model, tokenizer, test, num_labels = rebuilt(config)
    bench = PerformanceBenchmark(model, tokenizer, test, num_labels, batch_size=config.eval_batch_size)
    lengths = [len(ids) for ids in test["input_ids"]]
    assert [lengths[i] for i in bench.length_order()] == sorted(lengths) != lengths
    alone = []
    with torch.inference_mode():
        for i in range(len(test)):
            ids = torch.tensor([test[i]["input_ids"]])
            alone.append(model(input_ids=ids, attention_mask=torch.ones_like(ids)).logits[0].numpy())
    assert np.abs(bench.predict() - np.stack(alone)).max() < 1e-5


def test_size_and_latency(head_run):
    config, _ = head_run
    model, tokenizer, test, num_labels = rebuilt(config)
    measured = PerformanceBenchmark(model, tokenizer, test, num_labels, "head", batch_size=8).run_benchmark()
    assert measured["parameters"] == sum(p.numel() for p in model.parameters())
    assert measured["size_mb"] == measured["saved_mb"] > 4 * measured["parameters"] / 2**20 * 0.99
    assert 0 < measured["latency_ms_median"] <= measured["latency_ms_p90"]
    assert measured["reviews_per_second"] > 0 and measured["throughput_batch_size"] == 8


def test_throughput_is_timed_on_the_prediction_pass_without_its_warm_up_batch(head_run):
    """Reviews per second come from the prediction pass itself (no extra pass): every batch's forward pass is timed,
    the first left out as warm-up."""
    config, _ = head_run
    model, tokenizer, test, num_labels = rebuilt(config)
    bench = PerformanceBenchmark(model, tokenizer, test, num_labels, batch_size=16)
    bench.predict()
    assert bench.batch_reviews == [16, 16, 16] == [16] * (len(test) // 16)
    assert bench.throughput()["reviews_per_second"] == pytest.approx(32 / sum(bench.forward_seconds[1:]))
    single = PerformanceBenchmark(model, tokenizer, test.select(range(8)), num_labels, batch_size=16)
    single.predict()
    assert single.throughput()["reviews_per_second"] is None  # one batch: all of it warm-up


def test_unmerged_adapter_size_counts_the_base(head_run):
    from peft import LoraConfig, TaskType, get_peft_model

    config, _ = head_run
    model, tokenizer, test, num_labels = rebuilt(config)
    plain = PerformanceBenchmark(model, tokenizer, test, num_labels).compute_size()
    peft_model = get_peft_model(model, LoraConfig(task_type=TaskType.SEQ_CLS, r=4, target_modules=["query", "value"]))
    adapter = PerformanceBenchmark(peft_model, tokenizer, test, num_labels).compute_size()
    assert adapter["saved_mb"] < plain["size_mb"] / 5  # the adapter file alone
    assert adapter["size_mb"] == pytest.approx(plain["size_mb"] + adapter["saved_mb"], rel=0.02)


def test_agreement():
    assert agreement([0, 1, 1], np.array([0, 1, 0])) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="2 predictions against 3"):
        agreement([0, 1], [0, 1, 1])
