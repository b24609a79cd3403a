"""`bertpeft run` end to end on the smoke profile: every notebook through papermill, via the CLI, as a user runs it."""

import json
import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest
from conftest import ROOT, a_result, kill_tree, notebook_debris, notebook_errors, run_bertpeft

from bertpeft.result import Result

CONFIGS = ["none", "head", "head+1", "head+2", "lora", "full"]
# Marker strings in the shape of a W&B key (40 characters) and a Hugging Face token.
TOKENS = ("fakekey" + "0123456789abcdef" * 2 + "01", "hf_" + "markerTOKEN0123456789abcdefXYZ")
FIGURES = [
    "accuracy_vs_training_time",
    "metrics_per_configuration",
    "accuracy_vs_trainable_parameters",
    "training_time_per_configuration",
    "step_time_relative_to_full",
    "loss_curves",
    "confusion_matrices",
]
HAS_EXPORT = (ROOT / "notebooks" / "03_lora_merge_export.ipynb").exists()


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("pipeline") / "smoke"
    # --no-quotes, as for the committed reference run: executed notebooks show review lengths, not texts. A W&B key
    # and a Hub token are set, as on a user's machine: no file of the run may hold them (test_no_token_is_written).
    env = {**os.environ, "WANDB_API_KEY": TOKENS[0], "HF_TOKEN": TOKENS[1]}
    done = run_bertpeft("run", "--profile", "smoke", "--no-quotes", "--output", run_dir, env=env, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return run_dir, done


@pytest.mark.slow
def test_no_token_is_written_by_a_series(smoke_run):
    run_dir, done = smoke_run
    files = [p for p in run_dir.rglob("*") if p.is_file()]
    assert any(p.suffix == ".ipynb" for p in files) and any(p.suffix == ".json" for p in files)
    for token in TOKENS:
        assert token not in done.stdout + done.stderr
        assert [str(p) for p in files if token.encode() in p.read_bytes()] == [], token


@pytest.mark.slow
def test_the_trainings_of_a_series_share_a_kernel_yet_each_starts_as_in_a_new_one(smoke_run, tmp_path):
    """`bertpeft run` executes the training notebooks in one kernel, cleared between them: the last configuration
    it trains there (after five others) gives the same losses and predictions as `bertpeft train` in a process of
    its own, and every executed training notebook numbers its cells from 1, as a new kernel would."""
    run_dir, _ = smoke_run
    last = CONFIGS[-1]
    done = run_bertpeft("train", "--profile", "smoke", "--config", last, "--output", tmp_path / "alone")
    assert done.returncode == 0, done.stderr
    series = json.loads((run_dir / "results" / f"{last}-seed42.json").read_text(encoding="utf-8"))
    alone = json.loads((tmp_path / "alone" / "results" / f"{last}-seed42.json").read_text(encoding="utf-8"))
    assert series["test_predictions"] == alone["test_predictions"]
    assert [p["loss"] for p in series["loss_curve"]] == pytest.approx([p["loss"] for p in alone["loss_curve"]])
    for configuration in CONFIGS:
        notebook = json.loads((run_dir / "notebooks" / f"02_train-{configuration}-seed42.ipynb").read_text())
        counts = [c["execution_count"] for c in notebook["cells"] if c["cell_type"] == "code"]
        assert counts == list(range(1, len(counts) + 1)), configuration


@pytest.mark.slow
def test_smoke_series_leaves_a_complete_run_folder(smoke_run):
    run_dir, done = smoke_run
    executed = sorted(p.name for p in (run_dir / "notebooks").glob("*.ipynb"))
    expected = ["01_data_prep.ipynb", *(f"02_train-{c}-seed42.ipynb" for c in CONFIGS), "04_results.ipynb"]
    assert set(expected) <= set(executed), executed
    assert "06_beyond_lora.ipynb" not in executed  # the method comparison runs only with methods beyond the six
    for name in executed:
        assert not notebook_errors(run_dir / "notebooks" / name), name
        notebook = json.loads((run_dir / "notebooks" / name).read_text(encoding="utf-8"))
        assert notebook_debris(notebook) == [], name  # no warning, banner, ANSI code or frozen progress bar
        assert "removing the checkpoints" not in json.dumps(notebook), name  # a fresh run has none to remove
    assert not [p for p in (run_dir / "notebooks").iterdir() if p.name.startswith(".")], "a temporary notebook is left"
    # one progress line per notebook, with its time and outcome
    lines = [line for line in done.stdout.splitlines() if line.rstrip().endswith(" ok")]
    assert len(lines) == len(executed), done.stdout

    table = pd.read_csv(run_dir / "results.csv")
    assert table["config"].tolist() == CONFIGS
    for column in (
        "config",
        "seed",
        "trainable_params",
        "total_params",
        "accuracy",
        "accuracy_low",
        "accuracy_high",
        "f1_low",
        "f1_high",
        "precision",
        "recall",
        "f1",
        "train_seconds",
        "train_samples_per_second",
        "benchmark_accuracy",
        "peak_memory_mb",
    ):
        assert column in table, column
    assert table[["accuracy", "f1", "benchmark_accuracy", "trainable_params"]].notna().all().all()
    assert (table["accuracy"] - table["benchmark_accuracy"]).abs().max() < 1e-6
    assert sorted(p.name for p in (run_dir / "results").glob("*.json")) == sorted(f"{c}-seed42.json" for c in CONFIGS)

    for name in FIGURES:
        assert (run_dir / "figures" / f"{name}.png").stat().st_size > 5_000, name
    assert json.loads((run_dir / "run_config.json").read_text())["profile"] == "smoke"
    status = json.loads((run_dir / "run_status.json").read_text())
    assert status["failures"] == [] and status["finished"]
    if HAS_EXPORT:
        assert "03_lora_merge_export.ipynb" in executed
        assert any((run_dir / "export").iterdir())


@pytest.mark.slow
def test_executed_results_notebook_shows_the_static_exploration(smoke_run):
    run_dir, _ = smoke_run
    cells = json.loads((run_dir / "notebooks" / "04_results.ipynb").read_text())["cells"]
    text = json.dumps([c.get("outputs", []) for c in cells])
    assert "image/png" in text
    assert "brisket" in text  # the example reviews' predictions table
    assert "application/vnd.jupyter.widget-view+json" not in text  # no dead widgets in a papermill copy


@pytest.mark.slow
def test_error_analysis_counts_the_reviews_every_trained_configuration_gets_wrong(smoke_run):
    import numpy as np

    from bertpeft.explore import hard_reviews
    from bertpeft.layout import read_results
    from bertpeft.report import always_wrong, confusion_counts, results_table

    run_dir, _ = smoke_run
    results = read_results(run_dir)
    trained = [r for r in results if r.config != "none"]
    labels = np.asarray(trained[0].test_labels)
    wrong = np.logical_and.reduce([np.asarray(r.test_predictions) != labels for r in trained])
    count, shown = hard_reviews(run_dir, quote=False)
    assert count == int(wrong.sum()) and set(shown["row"]) <= set(np.flatnonzero(wrong).tolist())
    assert shown["review"].str.startswith("[review not quoted").all()
    full = [r for r in results if r.config == "full"]
    counts = confusion_counts(full)
    assert counts.sum() == len(labels) and np.trace(counts) == round(full[0].accuracy * len(labels))
    text = (run_dir / "notebooks" / "04_results.ipynb").read_text(encoding="utf-8")
    assert f"{count:,} of {len(labels):,} test reviews are wrong in every trained configuration" in text
    assert always_wrong(results_table(run_dir)) == count  # the findings' count: the same reviews
    assert f"{count:,} of the {len(labels):,} test reviews are wrong in every trained configuration and seed" in text


@pytest.mark.slow
def test_no_quotes_keeps_every_review_out_of_the_executed_notebooks(smoke_run):
    from bertpeft.data import SMOKE_DATA

    run_dir, _ = smoke_run
    reviews = pd.concat([pd.read_csv(SMOKE_DATA / f"{split}.csv") for split in ("train", "test")])["text"]
    outputs = {
        p.name: json.dumps([c.get("outputs", []) for c in json.loads(p.read_text())["cells"]])
        for p in (run_dir / "notebooks").glob("*.ipynb")
    }
    quoted = [
        (name, text)
        for name, out in outputs.items()
        for text in reviews
        if " ".join(text.split())[:40] in out or json.dumps(text[:40])[1:-1] in out
    ]
    assert not quoted, quoted[:3]
    assert "review not quoted" in outputs["01_data_prep.ipynb"] and "review not quoted" in outputs["04_results.ipynb"]


@pytest.mark.slow
def test_rerun_skips_finished_configurations(smoke_run):
    run_dir, first = smoke_run
    results = sorted((run_dir / "results").glob("*.json"))
    before = {p: p.stat().st_mtime_ns for p in results}
    done = run_bertpeft("run", "--profile", "smoke", "--output", run_dir, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p: p.stat().st_mtime_ns for p in results} == before
    assert done.stdout.count("skipped") >= len(CONFIGS)
    assert "01_data_prep" in done.stdout and "prepared data already in the run folder" in done.stdout
    assert done.seconds < first.seconds / 3


KILL_MOMENTS = (0.3, 0.45, 0.5)  # fractions of one whole run's time after each (re)start: a chain of kills; each
# restart pays a process and a kernel start again, which one whole run pays once for its trainings


@pytest.mark.slow
def test_kills_at_several_moments_then_the_same_command_give_what_one_whole_run_gives(smoke_run, tmp_path):
    """The series killed (SIGKILL of bertpeft, papermill and the kernel, as a lost machine would) at moments that
    fall wherever they fall: in data preparation, mid-training, in the export or the report; after each kill the
    same command again. The run folder it ends with holds the same results, exports and figures as the run that
    went through in one go: every metric, loss and test probability, the exported weights bit for bit, and every
    figure, whole. What finished before a kill is kept, not redone."""
    from safetensors.torch import load_file
    from test_reliability import same_apart_from_timings

    whole, done = smoke_run
    out = tmp_path / "killed"
    configs = "head,lora,full"  # a training before and after the export, the export, and the report: 6 notebooks
    command = [sys.executable, "-m", "bertpeft", "run", "--profile", "smoke", "--configs", configs, "--no-quotes"]
    command += ["--output", str(out)]
    kept: dict = {}  # result files that existed at a kill: they must not be redone
    for fraction in KILL_MOMENTS:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            process.wait(timeout=fraction * done.seconds * 6 / 9)  # of the 9-notebook whole run's time
        except subprocess.TimeoutExpired:
            kill_tree(process.pid)
        # A result whose notebook the kill cut off after it was written counts as not done: that step runs again.
        cut = {p.name.split("-", 1)[1].removesuffix(".running.ipynb") for p in (out / "notebooks").glob(".02_train-*")}
        kept.update(
            {
                p.name: p.stat().st_mtime_ns
                for p in (out / "results").glob("*.json")
                if p.name not in kept and p.stem not in cut
            }
        )
    last = run_bertpeft(*command[3:], timeout=600)
    assert last.returncode == 0, last.stdout[-2000:] + last.stderr[-2000:]
    assert kept, "no kill came after a finished configuration: the moments are too early"

    names = sorted(f"{c}-seed42.json" for c in configs.split(","))
    assert sorted(p.name for p in (out / "results").glob("*.json")) == names
    for name in names:
        a, b = (json.loads((folder / "results" / name).read_text()) for folder in (whole, out))
        assert same_apart_from_timings(a, b) == [], name
    assert {n: (out / "results" / n).stat().st_mtime_ns for n in kept} == kept  # finished before a kill: kept
    timings = ("seconds", "per_second", "memory", "latency", "step")
    tables = [pd.read_csv(folder / "results.csv") for folder in (whole, out)]
    same = [c for c in tables[0].columns if not any(w in c for w in timings)]
    tables[0] = tables[0][tables[0]["config"].isin(configs.split(","))].reset_index(drop=True)
    pd.testing.assert_frame_equal(tables[0][same], tables[1][same])
    if HAS_EXPORT:
        for model in ("lora-adapter/adapter_model.safetensors", "lora-merged/model.safetensors"):
            a, b = (load_file(folder / "export" / model) for folder in (whole, out))
            assert a.keys() == b.keys() and all((a[k] == b[k]).all() for k in a), model
        assert json.loads((out / "export" / "verification.json").read_text())["passed"]
    # The figures are drawn from the result JSONs alone (test_table_spread_and_figures_come_from_the_jsons_alone):
    # with equal results they are complete, and none is a truncated file.
    for name in FIGURES:
        assert (out / "figures" / f"{name}.png").stat().st_size > 5_000, name
    assert not [p for p in (out / "figures").iterdir() if p.suffix != ".png"]
    status = json.loads((out / "run_status.json").read_text())
    assert status["finished"] and status["failures"] == []
    kept = (".bertpeft.lock", ".bertpeft-manifest.json")  # the folder's lock and its record of what bertpeft wrote
    leftovers = [p for p in out.rglob("*") if p.name.startswith(".") and p.name not in kept]
    assert not leftovers and not list((out / "notebooks").glob("*.interrupted.ipynb")), leftovers


@pytest.mark.slow
def test_settings_that_change_results_do_not_mix_into_a_run_folder(smoke_run, capsys):
    from bertpeft.cli import main

    run_dir, _ = smoke_run
    assert main(["run", "--profile", "smoke", "--n-train", "64", "--output", str(run_dir)]) == 2
    assert "n_train 96 -> 64" in capsys.readouterr().err


def test_a_folder_made_with_the_lora_targets_auto_stands_for_still_resumes(tmp_path):
    """Run folders made before `auto` (the default) record BERT's LoRA targets by name: the same modules, so the
    series resumes there; other targets are refused, naming the change."""
    from bertpeft import profile_config
    from bertpeft.config import ConfigError
    from bertpeft.layout import atomic_write_json
    from bertpeft.manifest import claim_results, record
    from bertpeft.series import same_settings

    config = profile_config("smoke", output=str(tmp_path / "run"))
    for names in (["query", "value"], ["value", "query"], ["query", "key"]):
        made = a_result(config.replace(configuration="lora", lora_target_modules=tuple(names)))
        atomic_write_json(tmp_path / "run" / "results" / "lora-seed42.json", made.to_dict())
        record(tmp_path / "run" / "results" / "lora-seed42.json", root=tmp_path / "run")
        if names == ["query", "key"]:
            with pytest.raises(ConfigError, match=r"lora_target_modules \['query', 'key'\] -> \['auto'\]"):
                claim_results(config, force=False, same=same_settings(config))
        else:
            claim_results(config, force=False, same=same_settings(config))


def test_every_parameter_the_series_passes_is_declared_by_its_notebook(smoke_run):
    """Papermill injects undeclared parameters without a word; the run's settings travel in run_config.json, and
    what the series passes per notebook (folder, configuration, seed, ...) must be declared there."""
    from bertpeft.series import declared_parameters

    run_dir, _ = smoke_run
    status = json.loads((run_dir / "run_status.json").read_text())
    for step in status["steps"]:
        declared = declared_parameters(ROOT / "notebooks" / f"{step['notebook']}.ipynb")
        assert set(step["parameters"]) <= declared, (step["notebook"], set(step["parameters"]) - declared)


def test_a_configuration_the_model_cannot_have_fails_before_anything_runs(tmp_path, capsys):
    from bertpeft.cli import main

    assert main(["run", "--profile", "smoke", "--configs", "head,head+9", "--output", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert "head+9" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def fake_result(config, seed, accuracy, trainable):
    curve = [{"step": s, "loss": 0.7 - 0.01 * s * (trainable > 0)} for s in range(1, 6)] if trainable else []
    return {
        "name": f"{config}-seed{seed}",
        "config": config,
        "seed": seed,
        "trainable_params": trainable,
        "total_params": 1000,
        "trainable_percent": trainable / 10,
        "accuracy": accuracy,
        "precision": accuracy,
        "recall": accuracy,
        "f1": accuracy,
        "benchmark_accuracy": accuracy,
        "train_seconds": 10.0 + seed,
        "train_samples_per_second": 5.0,
        # a step of head+1 or lora takes half and a third of full's time; seed 2's steps are all twice seed 1's
        **(
            {
                f"step_seconds_{q}": seed * factor * {"full": 0.3, "head+1": 0.15, "lora": 0.1}.get(config, 0.2)
                for q, factor in (("p10", 0.5), ("median", 1.0), ("p90", 2.0))
            }
            if trainable
            else {}
        ),
        "peak_memory_mb": 100.0,
        "model": "m",
        "profile": "smoke",
        "device": {"type": "cpu", "count": 2},
        "loss_curve": curve,
        "num_labels": 2,
        "id2label": {"0": "negative", "1": "positive"},
        "run_config": {},
    }


def test_table_spread_and_figures_come_from_the_jsons_alone(tmp_path):
    from bertpeft import plots
    from bertpeft.layout import atomic_write_json, read_results
    from bertpeft.report import (
        CORRECT,
        results_table,
        results_takeaways,
        step_time_relative,
        summary_over_seeds,
        write_results_csv,
    )

    for config, trainable, base in (("full", 1000, 0.9), ("head+1", 300, 0.8), ("none", 0, 0.5), ("lora", 20, 0.85)):
        for seed, shift in ((1, -0.01), (2, 0.01)):
            atomic_write_json(
                tmp_path / "results" / f"{config}-seed{seed}.json", fake_result(config, seed, base + shift, trainable)
            )
    table = write_results_csv(tmp_path)
    assert table["config"].tolist() == ["none", "none", "head+1", "head+1", "lora", "lora", "full", "full"]
    written = pd.read_csv(tmp_path / "results.csv")
    assert list(written.columns) == [c for c in table.columns if c != CORRECT] and len(written) == len(table)
    assert table["device"].iloc[0] == "CPU (2 cores)"
    summary = summary_over_seeds(table)
    assert summary.set_index("config").loc["full", "accuracy_mean"] == pytest.approx(0.9)
    assert summary.set_index("config").loc["full", "accuracy_std"] == pytest.approx(0.01414, abs=1e-4)
    assert summary_over_seeds(table, formatted=True).set_index("config").loc["full", "accuracy"] == "0.9000 ± 0.0141"
    figures = [
        plots.plot_metrics_per_configuration(table),
        plots.plot_accuracy_vs_parameters(table),
        plots.plot_training_time(table),
        plots.plot_loss_curves(read_results(tmp_path)),
        plots.plot_accuracy_vs_training_time(table),
        plots.plot_step_time_relative(table),
    ]
    # steps relative to full's with the same seed: the seeds' different speeds cancel out
    relative = step_time_relative(table).set_index("config")
    assert relative.loc["lora", "ratio"] == pytest.approx(1 / 3) and relative.loc["head+1", "ratio"] == 0.5
    assert relative.loc["lora", ["ratio_min", "ratio_max", "p10", "p90"]].tolist() == pytest.approx(
        [1 / 3, 1 / 3, 1 / 6, 2 / 3]
    )
    assert "none" not in relative.index and relative.loc["full", "ratio"] == 1.0
    assert "each step 0.33x full's (0.33 to 0.33 over seeds)" in results_takeaways(table)
    for i, fig in enumerate(figures):
        assert plots.save_figure(fig, tmp_path / "figures", f"f{i}").stat().st_size > 5_000
    assert results_table(tmp_path / "empty").empty


def test_paired_tests_say_which_differences_from_full_are_real():
    """Pooled over seeds on the same reviews: 30 of 200 reviews that only full gets right, in both seeds, is a real
    difference; 2 and 1 is not, after Holm's correction over the comparisons; one row per configuration."""
    from bertpeft.report import paired_tests
    from bertpeft.stats import holm, paired_difference

    labels = [1] * 150 + [0] * 50

    def result(config, seed, wrong):
        predictions = [1 - y if i < wrong else y for i, y in enumerate(labels)]
        accuracy = 1 - wrong / len(labels)
        return Result.from_dict(
            {**fake_result(config, seed, accuracy, 10), "test_predictions": predictions, "test_labels": labels}
        )

    wrong = {"full": (0, 0), "head": (30, 30), "head+1": (2, 1)}
    pairs = paired_tests([result(c, seed, w[seed - 1]) for c, w in wrong.items() for seed in (1, 2)])
    pairs = pairs.set_index("config")
    assert list(pairs.index) == ["head", "head+1"] and (pairs["seeds"] == 2).all() and (pairs["reviews"] == 200).all()
    assert pairs.loc["head", "difference"] == pytest.approx(-0.15) and pairs.loc["head+1", "difference"] == -0.0075
    assert pairs.loc["head", "high"] < 0 <= pairs.loc["head+1", "high"]
    correct = [[int(i >= k) for i in range(200)] for k in (2, 1)]
    alone = paired_difference(correct, [[1] * 200] * 2)["p_value"]
    assert pairs.loc["head+1", "p_value"] == alone and list(pairs["p_holm"]) == holm(pairs["p_value"])
    assert bool(pairs.loc["head", "differs"]) and not bool(pairs.loc["head+1", "differs"])


def test_takeaways_say_no_evidence_of_a_difference_where_the_paired_test_finds_none():
    """head differs from full in the pooled test, head+1 does not: one is given with its difference and interval,
    the other as no evidence of a difference at this size, never as equal; the resolvable size is stated."""
    from bertpeft.report import paired_tests, results_takeaways, table_of

    labels = [1] * 150 + [0] * 50

    def result(config, seed, wrong):
        predictions = [1 - y if i < wrong else y for i, y in enumerate(labels)]
        return Result.from_dict(
            {
                **fake_result(config, seed, 1 - wrong / len(labels), 10),
                "test_predictions": predictions,
                "test_labels": labels,
            }
        )

    wrong = {"full": (0, 0), "head": (30, 30), "head+1": (2, 1)}
    results = [result(c, seed, w[seed - 1]) for c, w in wrong.items() for seed in (1, 2)]
    pairs = paired_tests(results)
    found = results_takeaways(table_of(results), pairs)
    paired = next(line for line in found.splitlines() if line.startswith("- Paired against full"))
    head = pairs.set_index("config").loc["head"]
    assert f"differ from `full` by `head` -0.150 ({head['low']:+.3f} to {head['high']:+.3f})" in paired
    assert "no evidence of a difference from `full` at this size for `head+1`" in paired
    assert "pooled over 2 seed(s)" in paired and "200 test reviews" in paired and "resolves" in paired
    assert "equal" not in found


def test_a_configurations_interval_over_several_seeds_resamples_seeds_and_reviews():
    """Three seeds on the same 400 reviews: the table's interval is the two-level bootstrap of the pooled
    accuracy, wider than one seed's Wilson interval over the reviews, and said to be over seeds and reviews."""
    from bertpeft.report import accuracy_with_interval, table_of
    from bertpeft.stats import paired_difference, wilson_interval

    labels = [1] * 200 + [0] * 200
    wrong = (20, 60, 100)  # seeds that disagree: much of the spread is the seeds'
    results = []
    for seed, k in enumerate(wrong, 1):
        predictions = [1 - y if i % 400 < k else y for i, y in enumerate(labels)]
        results.append(
            Result.from_dict(
                {**fake_result("lora", seed, 1 - k / 400, 10), "test_predictions": predictions, "test_labels": labels}
            )
        )
    mean, low, high, over = accuracy_with_interval(table_of(results))
    correct = [[int(i >= k) for i in range(400)] for k in wrong]
    expected = paired_difference(correct, [[0] * 400] * 3)
    assert (mean, low, high) == pytest.approx((expected["difference"], expected["low"], expected["high"]))
    assert over == "over 3 seeds and the test reviews"
    one_low, one_high = wilson_interval(400 - wrong[1], 400)  # the middle seed alone, over its reviews
    assert high - low > one_high - one_low


@pytest.mark.slow
def test_a_regular_install_runs_the_series_from_any_folder(tmp_path):
    """`pip install` (not editable) of the checkout, then `bertpeft run` from a folder outside it: the notebooks
    ship with the package. `--padding max_length`, which no notebook declares as a parameter, reaches notebook 01
    through the run folder's settings, so the data is prepared once, with it; a resume prepares nothing."""
    source = tmp_path / "source"
    tracked = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    for name in tracked:
        if (ROOT / name).is_file() and not name.startswith(("rendered/", "figures/")):
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(site), str(source)]
    subprocess.run(install, check=True, capture_output=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(site)}
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [sys.executable, "-c", "from bertpeft.series import notebooks_dir; print(notebooks_dir())"],
        env=env,
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where == str(site / "bertpeft" / "notebooks"), "the installed copy's notebooks are used"

    args = ("run", "--profile", "smoke", "--configs", "none", "--padding", "max_length", "--output", "run")
    first = run_bertpeft(*args, env=env, cwd=elsewhere, timeout=600)
    assert first.returncode == 0, first.stdout + first.stderr
    prepared = elsewhere / "run" / "prepared" / "meta.json"
    assert json.loads(prepared.read_text())["key"]["padding"] == "max_length"
    assert [line.split()[-1] for line in first.stdout.splitlines() if line.startswith("01_data_prep")] == ["ok"]
    before = prepared.stat().st_mtime_ns

    again = run_bertpeft(*args, env=env, cwd=elsewhere, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "01_data_prep" in again.stdout and "prepared data already in the run folder" in again.stdout
    assert prepared.stat().st_mtime_ns == before


def test_series_profile_splits_each_training_notebook_and_counts_its_test_passes(smoke_run, tmp_path):
    """benchmarks/series_profile.py on the smoke series: one row per notebook with its wall time, each training
    split into parts that add up to its notebook's time, two passes over the test reviews each, and the JSON."""
    run_dir, _ = smoke_run
    script = ROOT / "benchmarks" / "series_profile.py"
    done = subprocess.run(
        [sys.executable, str(script), "--from-run", str(run_dir), "--output", str(tmp_path)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads((tmp_path / "series_profile-smoke.json").read_text())
    status = json.loads((run_dir / "run_status.json").read_text())
    assert [r["step"] for r in report["steps"]] == [s["label"] for s in status["steps"]]
    assert all(r["status"] == "ok" and r["seconds"] > 0 for r in report["steps"])  # as it ran, if resumed since
    trainings = [r for r in report["steps"] if "training loop" in r]
    trained = [s for s in status["steps"] if s["notebook"] == "02_train"]
    assert len(trainings) == len(trained) == len(list((run_dir / "results").glob("*.json")))
    for row in trainings:
        parts = [row[p] for p in ("loading", "training loop", "final evaluation", "independent benchmark")]
        assert all(p >= 0 for p in parts) and row["final evaluation"] > 0 and row["independent benchmark"] > 0
        assert sum(parts) + row["evaluations and saves during training"] + row["rest"] == pytest.approx(row["seconds"])
        assert row["test_passes"] == ["final evaluation", "independent benchmark"]
    assert report["most_test_passes"] == 2
    assert "series wall time" in done.stdout


@pytest.mark.slow
def test_damaged_edited_or_deleted_outputs_are_named_set_aside_and_made_again(smoke_run, tmp_path):
    """After a finished run, each repaired by the same command, naming it in one line, redoing only what depends on
    it: a hand-edited result is set aside (kept as the user left it, not deleted) and made again, a deleted executed
    notebook is run again and a deleted figure drawn again; the other trainings and the export are skipped."""
    out = tmp_path / "run"
    shutil.copytree(smoke_run[0], out)  # a finished series (its manifest names files by their place in the folder)
    args = ("run", "--profile", "smoke", "--no-quotes", "--output", out)
    result, figure = out / "results" / "none-seed42.json", out / "figures" / "loss_curves.png"
    notebook = out / "notebooks" / "02_train-none-seed42.ipynb"
    original = json.loads(result.read_text())

    result.write_text(json.dumps({**original, "accuracy": 0.999}))
    notebook.unlink()
    figure.unlink()
    again = run_bertpeft(*args, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("skipped: already done") == len(CONFIGS) - 1, again.stdout
    assert "04_results                         runs again: figures/loss_curves.png is missing" in again.stdout
    assert figure.is_file(), "the deleted figure was drawn again"
    said = "results/none-seed42.json is not what bertpeft wrote (edited or damaged): set aside as set-aside/"
    assert said in again.stdout, again.stdout
    aside = list((out / "set-aside").rglob("none-seed42.json"))
    assert len(aside) == 1 and json.loads(aside[0].read_text())["accuracy"] == 0.999, "kept as the user left it"
    assert json.loads(result.read_text())["accuracy"] == original["accuracy"], "the same seed makes the same result"
    assert notebook.is_file(), "the deleted executed notebook was run again"
    assert "skipped: export already in the run folder, verified" in again.stdout, "the export depends on lora alone"
