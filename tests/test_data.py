"""Loading, checking, sampling and tokenizing reviews. Each bad input fails with one line that names the fix."""

import json
import time
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from bertpeft.data import (
    DataError,
    class_balance,
    load_prepared,
    load_reviews,
    prepare_reviews,
    sample_reviews,
    sample_with_leakage,
    token_lengths,
    tokenize_reviews,
)


def write_csv(folder, split, text):
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{split}.csv"
    path.write_text(text, encoding="utf-8")
    return path


def reviews_frame(n_per_class, classes=(0, 1), prefix="review"):
    rows = [{"label": c, "text": f"{prefix} {c} number {i}"} for c in classes for i in range(n_per_class[c])]
    return pd.DataFrame(rows)


def load_error(path) -> str:
    with pytest.raises(DataError) as err:
        load_reviews(str(path))
    message = str(err.value)
    assert "\n" not in message, "errors are one line"
    return message


def test_missing_path(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert "no such file or folder" in message and "--data" in message


def test_folder_without_train_file(tmp_path):
    write_csv(tmp_path, "reviews", "label,text\n0,bad\n1,good\n")
    assert "no train file" in load_error(tmp_path)


@pytest.mark.parametrize(("header", "missing"), [("score,text", "label"), ("label,comment", "text")])
def test_missing_column(tmp_path, header, missing):
    write_csv(tmp_path, "train", f"{header}\n0,bad\n1,good\n")
    message = load_error(tmp_path)
    assert f"has no {missing} column (looked for" in message and f"pass --{missing}-column NAME" in message


def load_own(tmp_path, files: dict[str, str], **columns):
    from bertpeft import profile_config

    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return load_reviews(profile_config("smoke", data=str(tmp_path), **columns))


def test_own_data_text_labels_become_ids_in_sorted_order_and_keep_their_names(tmp_path, capsys):
    raw = load_own(
        tmp_path,
        {
            "train.tsv": "sentence\tsentiment\ngreat\tpos\nawful\tneg\nfine\t pos\n",
            "test.tsv": "sentence\tsentiment\nbad\tneg\n",
        },
    )
    assert raw["train"]["label"] == [1, 0, 1] and raw["test"]["label"] == [0]
    assert raw["train"]["text"] == ["great", "awful", "fine"]
    assert raw["train"].features["label"].names == ["neg", "pos"]
    assert "labels 'neg' -> 0, 'pos' -> 1 (sorted by name)" in capsys.readouterr().out


def test_own_data_star_ratings_1_to_k_become_ids_0_to_k_minus_1(tmp_path):
    rows = "\n".join(json.dumps({"review": f"review {i}", "stars": i % 5 + 1, "user": "u"}) for i in range(10))
    raw = load_own(tmp_path, {"train.jsonl": rows, "test.jsonl": rows})
    assert raw["train"]["label"][:5] == [0, 1, 2, 3, 4] and raw["train"].column_names == ["label", "text"]
    assert raw["train"].features["label"].names[0] == "1 star"


def test_own_data_columns_named_by_setting_and_parquet(tmp_path):
    frame = pd.DataFrame({"body_text": ["good", "bad", "ok"], "y": [1, 0, 1], "text": ["x", "y", "z"]})
    frame.to_parquet(tmp_path / "train.parquet")
    raw = load_own(tmp_path, {}, text_column="body_text", label_column="y")
    assert raw["train"]["text"] == ["good", "bad", "ok"] and raw["train"]["label"] == [1, 0, 1]
    with pytest.raises(DataError, match=r"has no column 'stars' \(--label-column\); it has"):
        load_own(tmp_path, {}, label_column="stars")


def test_own_data_repeated_texts_are_reported(tmp_path, capsys):
    load_own(tmp_path, {"train.csv": "label,text\n0,bad\n1,good\n0, bad\n"})
    assert "(train): 1 review(s) repeat the text of another" in capsys.readouterr().out


def test_empty_label(tmp_path):
    write_csv(tmp_path, "train", "label,text\n0,bad\n,no label here\n1,good\n")
    message = load_error(tmp_path)
    assert "1 row(s) with an empty label" in message and "row 3" in message


def test_all_labels_missing(tmp_path):
    write_csv(tmp_path, "train", "label,text\n,bad\n,good\n")
    assert "empty label" in load_error(tmp_path)


def test_empty_file(tmp_path):
    write_csv(tmp_path, "train", "")
    assert "holds no reviews" in load_error(tmp_path)


def test_header_only(tmp_path):
    write_csv(tmp_path, "train", "label,text\n")
    assert "holds no reviews" in load_error(tmp_path)


@pytest.mark.parametrize("labels", [("0.5", "1"), ("1.5", "0")])
def test_labels_that_are_not_integers(tmp_path, labels):
    write_csv(tmp_path, "train", f"label,text\n{labels[0]},bad\n{labels[1]},good\n")
    message = load_error(tmp_path)
    assert "not integers" in message and repr(labels[0]).strip("'") in message and "0..K-1" in message


def test_boolean_labels_in_json_lines(tmp_path):
    (tmp_path / "train.jsonl").write_text('{"label": true, "text": "good"}\n{"label": false, "text": "bad"}\n')
    assert "not integers" in load_error(tmp_path)


def test_labels_that_skip_a_class(tmp_path):
    write_csv(tmp_path, "train", "label,text\n0,bad\n2,great\n0,awful\n")
    message = load_error(tmp_path)
    assert "skip [1]" in message and "0..K-1" in message


def test_negative_labels(tmp_path):
    write_csv(tmp_path, "train", "label,text\n-1,bad\n1,good\n")
    assert "negative labels" in load_error(tmp_path)


def test_a_class_only_in_the_test_split(tmp_path):
    write_csv(tmp_path, "train", "label,text\n0,bad\n1,good\n")
    write_csv(tmp_path, "test", "label,text\n0,bad\n2,great\n")
    assert "no review with label [2]" in load_error(tmp_path)


def test_single_class(tmp_path):
    write_csv(tmp_path, "train", "label,text\n1,good\n1,great\n1,fine\n")
    assert "single class" in load_error(tmp_path)


def test_file_that_is_not_utf8(tmp_path):
    (tmp_path / "train.csv").write_bytes("label,text\n0,café au lait was cold\n1,good\n".encode("latin-1"))
    message = load_error(tmp_path)
    assert "not UTF-8" in message and "train.csv" in message


def test_empty_texts_are_refused_naming_the_first(tmp_path):
    write_csv(tmp_path, "train", 'label,text\n0,bad\n1,\n1,"   "\n0,awful\n1,good\n')
    message = load_error(tmp_path)
    assert "(train) has 2 review(s) with an empty text (first at row 2" in message and "give every row" in message


def test_texts_that_look_like_numbers_stay_text(tmp_path):
    write_csv(tmp_path, "train", "label,text\n0,1\n1,10\n")
    assert load_reviews(str(tmp_path))["train"]["text"] == ["1", "10"]


def test_hub_unreachable_fails_fast_and_names_data_path():
    start = time.perf_counter()
    with pytest.raises(DataError) as err:
        load_reviews("yelp_polarity")
    assert time.perf_counter() - start < 10
    assert "--data PATH" in str(err.value) and "yelp_polarity" in str(err.value)


@pytest.mark.parametrize("suffix", ["csv", "parquet", "jsonl"])
def test_local_formats_load(tmp_path, suffix):
    frames = {"train": reviews_frame({0: 6, 1: 4}), "test": reviews_frame({0: 2, 1: 3}, prefix="held out")}
    for split, frame in frames.items():
        path = tmp_path / f"{split}.{suffix}"
        if suffix == "csv":
            frame.to_csv(path, index=False)
        elif suffix == "parquet":
            frame.to_parquet(path, index=False)
        else:
            frame.to_json(path, orient="records", lines=True)
    raw = load_reviews(str(tmp_path))
    assert {split: ds.num_rows for split, ds in raw.items()} == {"train": 10, "test": 5}
    assert raw["test"]["text"] == frames["test"]["text"].tolist()
    assert raw["train"]["label"] == frames["train"]["label"].tolist()


def test_a_single_file_loads_as_the_train_split(tmp_path):
    path = write_csv(tmp_path, "reviews", "label,text\n0,bad\n1,good\n")
    assert list(load_reviews(str(path))) == ["train"]


# --- sampling --------------------------------------------------------------------------------------------------


@pytest.fixture
def unbalanced(tmp_path):
    """300 training reviews, 70% negative; 100 test reviews, 40% negative."""
    reviews_frame({0: 210, 1: 90}).to_csv(tmp_path / "train.csv", index=False)
    reviews_frame({0: 40, 1: 60}, prefix="test").to_csv(tmp_path / "test.csv", index=False)
    return load_reviews(str(tmp_path))


def test_sampling_is_seeded(unbalanced):
    first = sample_reviews(unbalanced, 50, 20, seed=7)
    again = sample_reviews(unbalanced, 50, 20, seed=7)
    other = sample_reviews(unbalanced, 50, 20, seed=8)
    assert first["train"]["text"] == again["train"]["text"]
    assert first["test"]["text"] == again["test"]["text"]
    assert set(first["train"]["text"]) != set(other["train"]["text"])


def test_sampling_is_random_not_the_first_rows(unbalanced):
    sample = sample_reviews(unbalanced, 50, 20, seed=7)
    assert set(sample["train"]["text"]) != set(unbalanced["train"]["text"][:50])
    assert len(set(sample["train"]["text"])) == 50, "no row drawn twice"


@pytest.mark.parametrize("n", [10, 33, 50, 299])
def test_sampling_keeps_class_shares(unbalanced, n):
    sample = sample_reviews(unbalanced, n, 25, seed=3)
    counts = Counter(sample["train"]["label"])
    assert sum(counts.values()) == n
    assert abs(counts[0] - 0.7 * n) <= 1 and abs(counts[1] - 0.3 * n) <= 1
    test_counts = Counter(sample["test"]["label"])
    assert abs(test_counts[0] - 0.4 * 25) <= 1


def test_a_test_split_is_carved_when_there_is_none(tmp_path):
    reviews_frame({0: 30, 1: 30}).to_csv(tmp_path / "train.csv", index=False)
    sample = sample_reviews(load_reviews(str(tmp_path)), 40, 10, seed=1)
    assert (sample["train"].num_rows, sample["test"].num_rows) == (40, 10)
    assert not set(sample["train"]["text"]) & set(sample["test"]["text"])


def test_fewer_rows_than_asked_says_how_many(unbalanced):
    with pytest.raises(DataError, match="only 300 rows.*--n-train 300"):
        sample_reviews(unbalanced, 301, 10, seed=1)
    with pytest.raises(DataError, match="only 100 rows.*--n-test 100"):
        sample_reviews(unbalanced, 10, 500, seed=1)


def test_fewer_rows_than_asked_without_a_test_split(tmp_path):
    reviews_frame({0: 5, 1: 5}).to_csv(tmp_path / "train.csv", index=False)
    with pytest.raises(DataError, match="has 10"):
        sample_reviews(load_reviews(str(tmp_path)), 8, 5, seed=1)


# --- tokenizing and the prepared folder --------------------------------------------------------------------------


def test_tokenizing_truncates_and_does_not_pad(smoke_config):
    from bertpeft.models import load_tokenizer

    tokenizer = load_tokenizer(smoke_config.model)
    sample = sample_reviews(load_reviews(smoke_config.data), 40, 10, seed=0)
    full = token_lengths(sample["train"], tokenizer)
    max_length = int(np.median(full))
    lengths = [len(ids) for ids in tokenize_reviews(sample, tokenizer, max_length)["train"]["input_ids"]]
    assert lengths == np.minimum(full, max_length).tolist(), "truncated at max_length, never padded"
    assert min(lengths) < max_length


def test_prepared_data_is_saved_and_reused(smoke_config):
    from bertpeft.models import load_tokenizer

    config = smoke_config.replace(n_train=32, n_test=16)
    tokenizer = load_tokenizer(config.model)
    prepared, meta = prepare_reviews(config, tokenizer)
    folder = config.run_dir / "prepared"
    assert json.loads((folder / "meta.json").read_text())["rows"] == {"train": 32, "validation": 16, "test": 16}
    assert meta["num_labels"] == 2 and meta["id2label"] == {"0": "negative", "1": "positive"}
    again, _ = load_prepared(config, tokenizer)
    assert again["train"]["input_ids"] == prepared["train"]["input_ids"]
    changed, changed_meta = load_prepared(config.replace(n_train=24), tokenizer)
    assert changed_meta["rows"]["train"] == 24 and changed["train"].num_rows == 24


# --- the real reviews in ../shared/data ------------------------------------------------------------------------


def test_real_yelp_polarity(shared_data):
    raw = load_reviews(str(shared_data / "yelp_polarity"))
    assert {split: ds.num_rows for split, ds in raw.items()} == {"train": 3652, "test": 1000}
    assert sorted(set(raw["train"]["label"])) == [0, 1]
    assert all(text.strip() for text in raw["test"]["text"])
    sample = sample_reviews(raw, 200, 100, seed=42)
    balance = class_balance(sample)
    assert balance.loc[balance.split == "train", "rows"].tolist() == [100, 100]


def test_real_yelp_review_full_has_five_labels(shared_data):
    raw = load_reviews(str(shared_data / "yelp_review_full"))
    assert {split: ds.num_rows for split, ds in raw.items()} == {"train": 3270, "test": 1000}
    assert sorted(set(raw["train"]["label"])) == [0, 1, 2, 3, 4]
    assert sorted(set(raw["test"]["label"])) == [0, 1, 2, 3, 4]


def test_reviews_are_quoted_or_only_measured():
    from datasets import Dataset

    from bertpeft.data import preview_reviews, quote_review

    text = "Great   tacos,\nslow service. " * 20
    assert quote_review(text, limit=30) == "Great tacos, slow service. Gr…"
    hidden = quote_review(text, quote=False)
    assert "tacos" not in hidden and str(len(" ".join(text.split()))) in hidden
    split = Dataset.from_dict({"label": [1, 0, 1], "text": [text, "Cold soup.", "Fine."]})
    shown = preview_reviews(split, 2, quote=False)
    assert shown["label"].tolist() == [1, 0] and shown["chars"].tolist() == [len(text), 10]
    assert not shown["review"].str.contains("tacos|soup").any()
    assert preview_reviews(split, 5)["review"].tolist()[1:] == ["Cold soup.", "Fine."]


def test_validation_reviews_come_from_the_training_file_and_leave_the_training_sample_alone(tmp_path):
    rows = pd.DataFrame({"label": [i % 2 for i in range(200)], "text": [f"review number {i}" for i in range(200)]})
    rows.to_csv(tmp_path / "train.csv", index=False)
    rows.head(40).to_csv(tmp_path / "test.csv", index=False)
    raw = load_reviews(str(tmp_path))
    without = sample_reviews(raw, 100, 20, seed=3)
    with_validation = sample_reviews(raw, 100, 20, seed=3, n_validation=50)
    assert list(without) == ["train", "test"] and list(with_validation) == ["train", "validation", "test"]
    assert with_validation["train"]["text"] == without["train"]["text"], "the training sample does not move"
    validation = with_validation["validation"]
    assert len(validation) == 50 and not set(validation["text"]) & set(with_validation["train"]["text"])
    assert sorted(pd.Series(validation["label"]).value_counts().tolist()) == [25, 25], "stratified"
    with pytest.raises(DataError, match="n-validation 100 or less"):
        sample_reviews(raw, 100, 20, seed=3, n_validation=101)


# --- train/test leakage ------------------------------------------------------------------------------------------


def leaky_folder(folder, leaked=(3, 17, 28, 41, 55)):
    """60 made-up training reviews; a test file of 25 new ones plus copies of the training rows `leaked`, written
    with other whitespace (doubled spaces, a tab, a line break, padding)."""
    train = [
        (i % 2, f"Visit {i}: the {'soup was warm' if i % 2 else 'soup was cold'} and the bill was {i} dollars.")
        for i in range(60)
    ]
    test = [(i % 2, f"Another visit {i}, the {'tea was fresh' if i % 2 else 'tea was stale'}.") for i in range(25)]
    test += [
        (train[i][0], "  " + train[i][1].replace(" ", "  ", 2).replace(" the", "\tthe").replace("and", "\nand"))
        for i in leaked
    ]
    pd.DataFrame(train, columns=["label", "text"]).to_csv(folder / "train.csv", index=False)
    pd.DataFrame(test, columns=["label", "text"]).sample(frac=1, random_state=0).to_csv(
        folder / "test.csv", index=False
    )
    return folder, {" ".join(train[i][1].split()) for i in leaked}


def prepared_texts(run):
    import datasets

    prepared = datasets.load_from_disk(str(run / "prepared"))
    return {split: [" ".join(t.split()) for t in prepared[split]["text"]] for split in prepared}


def test_prep_counts_test_reviews_that_are_in_the_training_file(tmp_path):
    from conftest import run_bertpeft

    data, leaked = leaky_folder(tmp_path)
    assert not leaked & set(pd.read_csv(data / "test.csv")["text"]), "the copies differ in whitespace"
    run = tmp_path / "run"
    sizes = ["--n-train", "40", "--n-validation", "20", "--n-test", "30"]  # every row of both files
    done = run_bertpeft("prep", "--profile", "smoke", "--data", data, *sizes, "--output", run, timeout=180)
    assert done.returncode == 0, done.stderr
    texts = prepared_texts(run)
    in_train, in_validation = len(leaked & set(texts["train"])), len(leaked & set(texts["validation"]))
    assert in_train + in_validation == 5 and len(leaked & set(texts["test"])) == 5
    line = next(line for line in done.stdout.splitlines() if line.startswith("Leakage:"))
    assert (
        f"5 of the 30 test reviews also appear in the training file ({in_train} in the training sample, "
        f"{in_validation} in the validation split)"
        in line
        and "--drop-leaked true" in line
    )
    meta = json.loads((run / "prepared" / "meta.json").read_text())
    assert meta["leakage"] == {
        "test_in_train": in_train,
        "test_in_validation": in_validation,
        "test_in_train_file": 5,
        "dropped": 0,
    }
    assert meta["key"]["drop_leaked"] is False


def test_drop_leaked_leaves_them_out_of_the_prepared_test_split(tmp_path, capsys):
    from conftest import run_bertpeft

    from bertpeft.cli import main

    data, leaked = leaky_folder(tmp_path)
    run = tmp_path / "run"
    args = ["prep", "--profile", "smoke", "--data", str(data), "--n-train", "40", "--n-validation", "20"]
    assert main([*args, "--n-test", "30", "--drop-leaked", "true", "--output", str(run)]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if "error" in line]  # besides progress bars
    assert len(errors) == 1 and errors[0].startswith("bertpeft: error: "), errors
    assert "only 25 rows (after leaving out 5 that also appear in the training file)" in errors[0]
    assert "--n-test 25 or less" in errors[0] and not run.exists()
    done = run_bertpeft(*args, "--n-test", "25", "--drop-leaked", "true", "--output", run, timeout=180)
    assert done.returncode == 0, done.stderr
    texts = prepared_texts(run)
    assert len(texts["test"]) == 25 and not leaked & set(texts["test"])
    assert not set(texts["test"]) & (set(texts["train"]) | set(texts["validation"]))
    meta = json.loads((run / "prepared" / "meta.json").read_text())
    assert meta["leakage"] == {"test_in_train": 0, "test_in_validation": 0, "test_in_train_file": 0, "dropped": 5}
    assert meta["key"]["drop_leaked"] is True
    assert "none of the 25 test reviews appears in the training file; drop_leaked left out 5" in done.stdout


def test_drop_leaked_changes_nothing_without_leaks(unbalanced):
    plain, leakage = sample_with_leakage(unbalanced, 50, 20, seed=4, n_validation=10)
    dropped = sample_reviews(unbalanced, 50, 20, seed=4, n_validation=10, drop_leaked=True)
    assert leakage == {"test_in_train": 0, "test_in_validation": 0, "test_in_train_file": 0, "dropped": 0}
    assert all(plain[split]["text"] == dropped[split]["text"] for split in plain)


def test_a_carved_test_split_skips_texts_the_file_repeats(tmp_path):
    rows = [(i % 2, f"review number {i}") for i in range(40)]
    rows += [(0, "review  number 0"), (1, " review number 1"), (0, "review number 2\t")]  # repeats, other spacing
    pd.DataFrame(rows, columns=["label", "text"]).to_csv(tmp_path / "train.csv", index=False)
    raw = load_reviews(str(tmp_path))
    repeated = {"review number 0", "review number 1", "review number 2"}
    sample, leakage = sample_with_leakage(raw, 20, 20, seed=0, drop_leaked=True)
    assert leakage["dropped"] == 6 and leakage["test_in_train_file"] == 0
    assert not repeated & {" ".join(t.split()) for t in sample["test"]["text"]}


def test_the_smoke_fixture_has_no_leak():
    from bertpeft.fixtures import SMOKE_DATA

    files = {split: pd.read_csv(SMOKE_DATA / f"{split}.csv") for split in ("train", "test")}
    normalized = {split: {" ".join(t.split()) for t in frame["text"]} for split, frame in files.items()}
    assert len(normalized["train"]) == len(files["train"]) and len(normalized["test"]) == len(files["test"])
    assert not normalized["train"] & normalized["test"]
    raw = load_reviews(str(SMOKE_DATA))
    _, leakage = sample_with_leakage(raw, 144, 64, seed=42, n_validation=16)  # every row of both files
    assert leakage == {"test_in_train": 0, "test_in_validation": 0, "test_in_train_file": 0, "dropped": 0}


def test_measuring_long_reviews_prints_no_tokenizer_warning(capfd):
    """Notebook 01 measures every review's length, reviews longer than the model's 512 positions included: that is
    what it is for, so transformers' "sequence length is longer than the specified maximum" warning must not show."""
    from datasets import Dataset

    from bertpeft.data import token_lengths
    from bertpeft.models import load_tokenizer

    tokenizer = load_tokenizer("minilm")
    lengths = token_lengths(Dataset.from_dict({"text": ["great food " * 400, "bad"]}), tokenizer)
    assert lengths[0] > tokenizer.model_max_length and lengths[1] == 3
    assert "longer than the specified maximum" not in capfd.readouterr().err
