"""Reviews in, tokenized train/test splits out: from the Hugging Face Hub, a local folder or file, or the fixture.

Every check that can fail on a user's input runs here, before any model is loaded, and raises `DataError` with
one line naming the problem and the fix.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import PREPARED_SETTINGS, ConfigError, OneLineError, RunConfig, first_line
from .fixtures import SMOKE_DATA
from .hub import RepositoryUnavailable, reach_repository
from .layout import RunDir
from .manifest import clear, record_folder
from .models import model_positions
from .result import labels_by_id

# Today's canonical Hub ids (the short names are redirects that older tutorials use).
HUB_ALIASES = {
    "yelp_polarity": "fancyzhx/yelp_polarity",
    "yelp_review_full": "Yelp/yelp_review_full",
}
LOCAL_FORMATS = {".csv": "csv", ".tsv": "csv", ".parquet": "parquet", ".jsonl": "json", ".json": "json"}
# Column names taken for the review text and its label when the data says no other (`--text-column auto`), in order.
TEXT_COLUMNS = ("text", "sentence", "review", "review_text", "content", "body")
LABEL_COLUMNS = ("label", "labels", "sentiment", "stars", "rating", "class", "target")


class DataError(OneLineError):
    """Input data that cannot be used; the message names the problem and the fix."""


@dataclass(frozen=True)
class DataSource:
    kind: str  # "hub" or "local"
    location: str  # Hub id, or a folder/file path
    files: dict[str, str] | None = None  # split -> file, for local sources


def resolve_data_source(data: str) -> DataSource:
    """Where `data` points: the smoke fixture, a local folder/file, or a Hub dataset id."""
    if data == "smoke":
        data = str(SMOKE_DATA)
    path = Path(data).expanduser()
    if path.exists():
        return DataSource("local", str(path), _local_files(path))
    looks_local = (
        data.startswith((".", "/", "~")) or Path(data).suffix.lower() in LOCAL_FORMATS or os.sep + os.sep in data
    )
    if looks_local or data.count("/") > 1:
        raise DataError(
            f"no such file or folder: {data}. Pass --data with a folder holding train and test files "
            f"(CSV, Parquet or JSON Lines with columns label,text) or a Hub dataset id such as yelp_polarity"
        )
    return DataSource("hub", HUB_ALIASES.get(data, data))


def hub_data_id(data: str) -> str | None:
    """The Hub id of `data` when it names a Hub dataset (aliases resolved), None for local data and the fixture."""
    if data == "smoke" or Path(data).expanduser().exists():
        return None
    return HUB_ALIASES.get(data, data)


def published_data_name(data: str) -> str:
    """How a file meant for publishing (a model card) names `data`: the Hub id of a Hub dataset (aliases resolved),
    a local folder or file by its own name, never its path on this machine; the shipped fixture as `smoke`."""
    if data == "smoke":
        return data
    return hub_data_id(data) or Path(data).expanduser().resolve().name


def _local_files(path: Path) -> dict[str, str]:
    if path.is_file():
        _check_format(path)
        return {"train": str(path)}
    files = {}
    for split in ("train", "test"):
        found = sorted(p for p in path.iterdir() if p.stem == split and p.suffix.lower() in LOCAL_FORMATS)
        if found:
            files[split] = str(found[0])
    if "train" not in files:
        raise DataError(
            f"{path} has no train file: put train.csv (or .parquet/.jsonl) and test.csv in it, with columns label,text"
        )
    return files


def _check_format(path: Path) -> str:
    fmt = LOCAL_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type {path.suffix!r}; use .csv, .parquet or .jsonl")
    return fmt


def _check_utf8(path: Path) -> None:
    if LOCAL_FORMATS.get(path.suffix.lower()) == "parquet":
        return
    with open(path, "rb") as f:
        offset = 0
        decoder = __import__("codecs").getincrementaldecoder("utf-8")()
        while chunk := f.read(1 << 20):
            try:
                decoder.decode(chunk)
            except UnicodeDecodeError as err:
                raise DataError(
                    f"{path} is not UTF-8 text (bad byte at offset {offset + err.start}): "
                    f"re-save it as UTF-8, e.g. iconv -f latin1 -t utf-8"
                ) from None
            offset += len(chunk)
        try:
            decoder.decode(b"", final=True)
        except UnicodeDecodeError:
            raise DataError(f"{path} is not UTF-8 text (truncated character at the end): re-save it as UTF-8") from None


def reach_hub_data(repo_id: str) -> None:
    """One bounded question to the Hub about dataset `repo_id` (bertpeft.hub): offline from the cache when there is
    no connection, one line when the Hub answers without the dataset."""
    try:
        reach_repository(repo_id, "dataset")
    except RepositoryUnavailable as err:
        raise DataError(f"{err}; or pass --data PATH with a folder holding train.csv and test.csv") from None


def load_reviews(data: str | RunConfig):
    """Load `data` (a Hub id or local path, or a RunConfig naming one and its columns) as a `DatasetDict` with `label`
    (ids 0..K-1, named by the data's own labels) and `text` columns, and a test split when there is one."""
    import datasets

    text_column = data.text_column if isinstance(data, RunConfig) else AUTO_COLUMN
    label_column = data.label_column if isinstance(data, RunConfig) else AUTO_COLUMN
    data = data.data if isinstance(data, RunConfig) else data
    source = resolve_data_source(data)
    if source.kind == "local":
        fmt = _check_format(Path(source.files["train"]))
        for file in source.files.values():
            if _check_format(Path(file)) != fmt:
                raise DataError(
                    f"{source.location}: train and test files are in different formats; "
                    f"save both as CSV, Parquet or JSON Lines"
                )
            if _has_no_rows(Path(file), fmt):
                raise DataError(f"{file} holds no reviews: it needs a header label,text and one row per review")
            _check_utf8(Path(file))
        try:  # each file alone: files whose columns differ would fail as one with a message naming neither
            raw = datasets.DatasetDict(
                {
                    split: datasets.load_dataset(fmt, data_files=file, split="train", **_reader_options(file))
                    for split, file in source.files.items()
                }
            )
        except Exception as err:  # noqa: BLE001 - any reader failure becomes one clear line
            raise DataError(f"could not read {source.location}: {_first_line(err)}") from None
    else:
        reach_hub_data(source.location)
        try:
            raw = datasets.load_dataset(source.location)
        except Exception as err:  # noqa: BLE001
            raise DataError(
                f"could not load {source.location!r} from the Hugging Face Hub ({_first_line(err)}). "
                f"Offline? Pass --data PATH with a folder holding train.csv and test.csv (columns label,text)"
            ) from None
    raw = standard_columns(raw, source.location, text_column, label_column)
    return check_reviews(label_ids(raw, published_data_name(data)), source.location)


def _reader_options(file: str) -> dict[str, str]:
    return {"delimiter": "\t"} if Path(file).suffix.lower() == ".tsv" else {}


AUTO_COLUMN = "auto"


def _pick_column(ds, asked: str, candidates: tuple[str, ...], what: str, option: str, where: str, split: str) -> str:
    if asked != AUTO_COLUMN:
        if asked not in ds.column_names:
            raise DataError(f"{where} ({split}) has no column {asked!r} ({option}); it has {ds.column_names}")
        return asked
    found = [c for c in candidates if c in ds.column_names]
    if not found:
        raise DataError(
            f"{where} ({split}) has no {what} column (looked for {', '.join(candidates)}); it has {ds.column_names}: "
            f"pass {option} NAME"
        )
    return found[0]


def standard_columns(raw, where: str, text_column: str = AUTO_COLUMN, label_column: str = AUTO_COLUMN):
    """Each split with the review text as `text` and its label as `label` (other columns dropped): the columns
    named, or (auto) the first of TEXT_COLUMNS / LABEL_COLUMNS the data has."""
    import datasets

    out = {}
    for split, ds in raw.items():
        text = _pick_column(ds, text_column, TEXT_COLUMNS, "text", "--text-column", where, split)
        label = _pick_column(ds, label_column, LABEL_COLUMNS, "label", "--label-column", where, split)
        if text == label:
            raise DataError(f"{where}: the text and the label cannot both be column {text!r}")
        ds = ds.select_columns([label, text])
        if (label, text) != ("label", "text"):
            ds = ds.rename_columns({label: "_label", text: "_text"}).rename_columns(
                {"_label": "label", "_text": "text"}
            )
        out[split] = ds
    return datasets.DatasetDict(out)


def label_ids(raw, where: str):
    """Labels as ids 0..K-1 named by the data's own labels, in an order anyone can reproduce: text labels (e.g.
    neg/pos) by sorted name; whole numbers 1..K (star ratings) as 0..K-1; labels 0..K-1 (and ClassLabels) unchanged.
    Says what it mapped, in one line."""
    import datasets

    feature = next(iter(raw.values())).features["label"]
    if isinstance(feature, datasets.ClassLabel):
        return raw
    values = [v for ds in raw.values() for v in ds["label"] if v is not None]
    if values and all(isinstance(v, str) for v in values):
        names = sorted({v.strip() for v in values})
        if all(n.lstrip("-").isdigit() for n in names):  # numbers written as text (a JSON with "1", "2")
            return label_ids(datasets.DatasetDict({s: ds.map(_as_int) for s, ds in raw.items()}), where)
        mapping = dict(zip(names, range(len(names))))
        print(f"{where}: labels {', '.join(f'{n!r} -> {i}' for n, i in mapping.items())} (sorted by name)")
        return datasets.DatasetDict(
            {s: ds.map(_stripped).cast_column("label", datasets.ClassLabel(names=names)) for s, ds in raw.items()}
        )
    whole = [v for v in values if isinstance(v, (int, np.integer)) and not isinstance(v, bool)]
    if whole and len(whole) == len(values):
        present = sorted(set(int(v) for v in whole))
        if present[0] == 1 and 0 not in present and len(present) >= 2 and present == list(range(1, present[-1] + 1)):
            k = present[-1]
            names = [f"{i} star" + ("s" if i > 1 else "") for i in present] if k == 5 else [str(i) for i in present]
            print(f"{where}: labels 1..{k} -> ids 0..{k - 1}")
            return datasets.DatasetDict(
                {s: ds.map(_minus_one).cast_column("label", datasets.ClassLabel(names=names)) for s, ds in raw.items()}
            )
    return raw


def _as_int(row):
    return {"label": int(row["label"].strip())}


def _stripped(row):
    return {"label": row["label"].strip() if isinstance(row["label"], str) else row["label"]}


def _minus_one(row):
    return {"label": row["label"] - 1 if row["label"] is not None else None}


def _has_no_rows(path: Path, fmt: str) -> bool:
    """An empty file, or a CSV with a header only (the readers fail on both with messages that say neither)."""
    if path.stat().st_size == 0:
        return True
    if fmt == "csv":
        with open(path, "rb") as f:
            f.readline()  # the header
            return not any(line.strip() for line in f)
    return False


def _first_line(err: Exception) -> str:
    return f"{type(err).__name__}: {first_line(err)}"[:300]


def check_reviews(raw, where: str):
    """Validate columns, labels and texts of every split (reporting repeated texts). Returns the DatasetDict."""
    import datasets

    for split, ds in raw.items():
        missing = [c for c in ("label", "text") if c not in ds.column_names]
        if missing:
            raise DataError(
                f"{where} ({split}) has no {' or '.join(repr(c) for c in missing)} column; "
                f"it has {ds.column_names}. Rename the columns to label,text"
            )
    num_labels = None
    cleaned = {}
    for split, ds in raw.items():
        labels = ds["label"]
        bad = [i for i, v in enumerate(labels) if v is None or (isinstance(v, float) and np.isnan(v))]
        if bad:
            raise DataError(
                f"{where} ({split}) has {len(bad)} row(s) with an empty label (first at row {bad[0] + 2} "
                f"of a CSV with header): give every review a label"
            )
        values = np.asarray(labels)
        if values.dtype.kind == "f" and np.all(values == np.round(values)):
            values = values.astype(np.int64)
        if values.dtype.kind not in "iu":
            example = next(v for v in labels if isinstance(v, bool) or not isinstance(v, (int, np.integer)))
            raise DataError(
                f"{where} ({split}) has labels that are not integers, e.g. {example!r}: "
                f"use integer labels 0..K-1 (0 negative, 1 positive for polarity), star ratings 1..K or label names"
            )
        split_classes = int(values.max()) + 1 if len(values) else 0
        if len(values) and (values.min() < 0):
            raise DataError(f"{where} ({split}) has negative labels (min {values.min()}): use labels 0..K-1")
        num_labels = max(num_labels or 0, split_classes)
        if ds.features["label"].dtype not in ("int64", "int32") and not isinstance(
            ds.features["label"], datasets.ClassLabel
        ):
            ds = ds.cast_column("label", datasets.Value("int64"))
        if ds.features["text"].dtype not in ("string", "large_string"):  # e.g. a CSV whose texts are all numbers
            ds = ds.cast_column("text", datasets.Value("string"))
        texts = ds["text"]
        empty = [i for i, t in enumerate(texts) if t is None or not str(t).strip()]
        if empty:
            raise DataError(
                f"{where} ({split}) has {len(empty)} review(s) with an empty text (first at row {empty[0] + 1} of "
                f"the data): give every row a text, or remove the empty ones"
            )
        repeated = len(texts) - len({normalized_text(str(t)) for t in texts})
        if repeated:
            print(f"{where} ({split}): {repeated} review(s) repeat the text of another (whitespace aside)")
        cleaned[split] = ds
    present = set()
    for ds in cleaned.values():
        present.update(int(v) for v in ds["label"])
    if len(present) < 2:
        raise DataError(f"{where} has a single class ({sorted(present)}): a classifier needs at least two")
    missing = sorted(set(range(num_labels)) - present)
    if missing:
        raise DataError(
            f"{where} labels skip {missing}: labels must be 0..K-1 with every class present (found {sorted(present)})"
        )
    if "train" in cleaned:
        unseen = sorted(present - {int(v) for v in cleaned["train"]["label"]})
        if unseen:
            raise DataError(
                f"{where} (train) has no review with label {unseen}, which other splits use: "
                f"the model cannot learn a class it never sees; add such reviews to the train file"
            )
    return datasets.DatasetDict(cleaned)


def label_names(raw, num_labels: int) -> dict[int, str]:
    """`id2label` from the data set's ClassLabel names when it has them, else readable defaults."""
    import datasets

    feature = next(iter(raw.values())).features["label"]
    if isinstance(feature, datasets.ClassLabel) and len(feature.names) == num_labels:
        names = feature.names
        if num_labels == 2 and names == ["1", "2"]:  # yelp_polarity's names are its star buckets
            names = ["negative", "positive"]
        return dict(enumerate(names))
    if num_labels == 2:
        return {0: "negative", 1: "positive"}
    if num_labels == 5:
        return {i: f"{i + 1} star" + ("s" if i else "") for i in range(5)}
    return {i: f"label {i}" for i in range(num_labels)}


def stratified_indices(labels, n: int, seed: int) -> list[int]:
    """`n` indices drawn at random without replacement, each class in proportion to its share of `labels`."""
    labels = np.asarray(labels)
    if n > len(labels):
        raise DataError(f"asked for {n} rows but there are only {len(labels)}")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)
    take = np.floor(quota).astype(int)
    for i in np.argsort(-(quota - take))[: n - take.sum()]:  # largest remainders get the leftover rows
        take[i] += 1
    chosen = [
        rng.choice(np.flatnonzero(labels == c), size=k, replace=False) for c, k in zip(classes, take, strict=True)
    ]
    picked = np.concatenate(chosen)
    rng.shuffle(picked)
    return picked.tolist()


def normalized_text(text: str) -> str:
    """A review's text as leakage checks compare it: surrounding whitespace stripped, inner runs of whitespace
    collapsed to one space, case kept."""
    return " ".join(str(text).split())


def sample_reviews(raw, n_train: int, n_test: int, seed: int, n_validation: int = 0, drop_leaked: bool = False):
    """Seeded, stratified random caps of the train and test splits (a test split is carved when there is none),
    and `n_validation` reviews from the training file's other rows: a validation split for choices made during
    training, so that the test split is read only for the final numbers. The training sample does not depend on
    `n_validation`. With `drop_leaked`, the test split is drawn only from reviews whose text does not appear in the
    training file. See `sample_with_leakage` for the same draw with its leakage counts."""
    return sample_with_leakage(raw, n_train, n_test, seed, n_validation, drop_leaked)[0]


def sample_with_leakage(
    raw, n_train: int, n_test: int, seed: int, n_validation: int = 0, drop_leaked: bool = False
) -> tuple[Any, dict[str, int]]:
    """`sample_reviews`' splits and how many test reviews also appear (compared by `normalized_text`) in the
    training sample (`test_in_train`), in the validation split (`test_in_validation`) and anywhere in the training
    file's rows outside the test split (`test_in_train_file`); `dropped` counts the test candidates `drop_leaked`
    left out for that reason (0 without it)."""
    import datasets

    train = raw["train"]
    dropped = 0
    if "test" not in raw:
        if n_train + n_test > len(train):
            raise DataError(
                f"asked for n_train={n_train} + n_test={n_test} rows but the file has {len(train)}: "
                f"lower --n-train/--n-test"
            )
        candidates = np.arange(len(train))
        if drop_leaked:  # a text that occurs twice in the file would be in both splits: carve from the others
            counts = Counter(normalized_text(t) for t in train["text"])
            candidates = np.flatnonzero([counts[normalized_text(t)] == 1 for t in train["text"]])
            dropped = len(train) - len(candidates)
            if n_test > len(candidates):
                raise DataError(
                    f"asked for n_test={n_test} but only {len(candidates)} rows of the file have a text that occurs "
                    f"once ({dropped} repeat, and drop_leaked keeps them out of the test split): pass --n-test "
                    f"{len(candidates)} or less"
                )
        test_idx = candidates[stratified_indices(np.asarray(train["label"])[candidates], n_test, seed + 1)]
        rest = sorted(set(range(len(train))) - set(test_idx.tolist()))
        test, train = train.select(test_idx.tolist()), train.select(rest)
    else:
        test = raw["test"]
        if drop_leaked:
            in_train = _texts_in(train["text"], test["text"])
            keep = [i for i, t in enumerate(test["text"]) if normalized_text(t) not in in_train]
            dropped = len(test) - len(keep)
            if dropped:
                test = test.select(keep)
    for split, ds, n, flag in (("train", train, n_train, "--n-train"), ("test", test, n_test, "--n-test")):
        if n > len(ds):
            after = (
                f" (after leaving out {dropped} that also appear in the training file)"
                if split == "test" and dropped
                else ""
            )
            raise DataError(
                f"asked for {flag.lstrip('-').replace('-', '_')}={n} but the {split} split has only "
                f"{len(ds)} rows{after}: pass {flag} {len(ds)} or less"
            )
    picked = stratified_indices(train["label"], n_train, seed)
    splits = {"train": train.select(picked)}
    if n_validation:
        rest = np.setdiff1d(np.arange(len(train)), picked)
        if n_validation > len(rest):
            raise DataError(
                f"asked for n_validation={n_validation} besides n_train={n_train}, but the train split has only "
                f"{len(train)} rows: pass --n-validation {len(rest)} or less"
            )
        chosen = stratified_indices(np.asarray(train["label"])[rest], n_validation, seed + 2)
        splits["validation"] = train.select(rest[chosen].tolist())
    splits["test"] = test.select(stratified_indices(test["label"], n_test, seed))
    test_texts = [normalized_text(t) for t in splits["test"]["text"]]

    def in_split(name: str) -> int:
        if name not in splits:
            return 0
        found = _texts_in(splits[name]["text"], test_texts)
        return sum(t in found for t in test_texts)

    in_file = _texts_in(train["text"], test_texts)
    leakage = {
        "test_in_train": in_split("train"),
        "test_in_validation": in_split("validation"),
        "test_in_train_file": sum(t in in_file for t in test_texts),
        "dropped": dropped,
    }
    return datasets.DatasetDict(splits), leakage


def _texts_in(texts, wanted) -> set[str]:
    """The normalized texts of `wanted` that occur among `texts` (memory bounded by `wanted`, not by `texts`)."""
    wanted = {normalized_text(t) for t in wanted}
    return {n for n in map(normalized_text, texts) if n in wanted}


def leakage_sentence(leakage: dict[str, int], n_test: int) -> str:
    """One sentence on train/test leakage (texts compared ignoring differences in whitespace), for `bertpeft prep`
    and notebook 01."""
    kept_out = (
        f"; drop_leaked left out {leakage['dropped']:,} candidate(s) that also appear in the training file"
        if leakage.get("dropped")
        else ""
    )
    if not leakage["test_in_train_file"]:
        return f"Leakage: none of the {n_test:,} test reviews appears in the training file{kept_out}."
    return (
        f"Leakage: {leakage['test_in_train_file']:,} of the {n_test:,} test reviews also appear in the training file "
        f"({leakage['test_in_train']:,} in the training sample, {leakage['test_in_validation']:,} in the validation "
        f"split){kept_out}; pass --drop-leaked true (setting drop_leaked) to leave them out of the test split."
    )


def check_max_length(max_length: int, tokenizer, positions: int | None = None) -> None:
    """Refuse a `max_length` above what the model takes: its tokenizer's `model_max_length` or, when the tokenizer
    does not say (it then reads as a huge number), the model's `positions` (max_position_embeddings)."""
    model_max = getattr(tokenizer, "model_max_length", None)
    limits = [m for m in (model_max, positions) if m and m < 10**6]
    if limits and max_length > min(limits):
        raise ConfigError(
            f"max_length={max_length} is above the model's maximum of {min(limits)}: "
            f"pass --max-length {min(limits)} or less"
        )


def check_data(config: RunConfig) -> None:
    """What preparing `config`'s reviews would refuse, found before any work: for local files (cheap to read) the
    columns, labels and row counts the sample needs; for a Hub dataset that it can be reached (or is cached) and,
    where its card says, its columns and split sizes. Raises DataError."""
    import contextlib
    import io

    import datasets

    source = resolve_data_source(config.data)
    if source.kind == "local":
        bars = not datasets.utils.are_progress_bars_disabled()
        datasets.disable_progress_bars()
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # notebook 01 says the same again
                raw = load_reviews(config)
                sample_with_leakage(
                    raw, config.n_train, config.n_test, config.data_seed, config.n_validation, config.drop_leaked
                )
        finally:
            if bars:
                datasets.enable_progress_bars()
        return
    reach_hub_data(source.location)
    try:
        info = datasets.load_dataset_builder(source.location).info
    except Exception as err:  # noqa: BLE001 - any failure to find it becomes one clear line
        raise DataError(
            f"could not load {source.location!r} from the Hugging Face Hub ({_first_line(err)}). "
            f"Offline? Pass --data PATH with a folder holding train.csv and test.csv (columns label,text)"
        ) from None
    missing = [c for c in ("label", "text") if info.features is not None and c not in info.features]
    if missing:
        raise DataError(
            f"{source.location} has no {' or '.join(map(repr, missing))} column; it has {list(info.features)}: "
            f"pass a folder of label,text files with --data instead"
        )
    rows = {split: s.num_examples for split, s in (info.splits or {}).items() if s.num_examples}
    wanted = {"train": config.n_train + config.n_validation, "test": config.n_test}
    for split, n in wanted.items():
        if split in rows and n > rows[split] and not (split == "test" and "test" not in rows):
            option = "--n-test" if split == "test" else "--n-train (with --n-validation)"
            raise DataError(
                f"{source.location} ({split}) has {rows[split]} rows, fewer than the {n} asked for: lower {option}"
            )


def tokenize_reviews(dataset, tokenizer, max_length: int, padding: str = "dynamic", positions: int | None = None):
    """Token ids truncated at `max_length`. Padding happens per batch in the collator, unless the write-ups' recipe
    (`padding="max_length"`) is asked for, which pads every review to `max_length` here."""
    check_max_length(max_length, tokenizer, positions)

    def encode(batch):
        return tokenizer(
            batch["text"],
            truncation=True,
            max_length=max_length,
            padding="max_length" if padding == "max_length" else False,
        )

    return dataset.map(encode, batched=True, desc="Tokenizing")


def prepared_key(config: RunConfig) -> dict[str, Any]:
    """What the prepared data depends on (the settings marked `prepared`); a stale copy is rebuilt when any changed."""
    return json.loads(json.dumps({k: getattr(config, k) for k in PREPARED_SETTINGS}))


def prepare_reviews(config: RunConfig, tokenizer, save: bool = True):
    """Load, check, sample and tokenize (with `tokenizer`, the model's) the reviews `config` names; save them into
    the run folder."""
    raw = load_reviews(config)
    num_labels = 1 + max(max(ds["label"]) for ds in raw.values())
    id2label = label_names(raw, num_labels)
    sampled, leakage = sample_with_leakage(
        raw, config.n_train, config.n_test, config.data_seed, config.n_validation, config.drop_leaked
    )
    tokenized = tokenize_reviews(sampled, tokenizer, config.max_length, config.padding, model_positions(config.model))
    meta = {
        "key": prepared_key(config),
        "id2label": {str(k): v for k, v in id2label.items()},
        "num_labels": num_labels,
        "rows": {s: len(d) for s, d in tokenized.items()},
        "leakage": leakage,
    }
    if save:
        target = RunDir(config).prepared
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tokenized.save_to_disk(str(tmp))
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2), encoding="utf-8")
        clear(RunDir(config).root, target)  # the data bertpeft prepared before; a folder of the user's stops it
        record_folder(RunDir(config).root, target)
        tmp.rename(target)
    return tokenized, meta


def prepared_is_current(config: RunConfig) -> bool:
    """Whether the run folder holds data prepared with `config`'s settings."""
    meta = RunDir(config).prepared / "meta.json"
    try:
        return json.loads(meta.read_text(encoding="utf-8")).get("key") == prepared_key(config)
    except (OSError, ValueError):
        return False


def load_prepared(config: RunConfig, tokenizer):
    """The run folder's prepared data if it matches `config`, else a fresh preparation with `tokenizer`."""
    import datasets

    folder = RunDir(config).prepared
    if prepared_is_current(config):
        return datasets.load_from_disk(str(folder)), json.loads((folder / "meta.json").read_text(encoding="utf-8"))
    return prepare_reviews(config, tokenizer)


MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def length_order(dataset) -> np.ndarray:
    """Row indices of a tokenized split from the shortest review to the longest (stable: equal lengths keep their row
    order). Batches taken in this order pad each review to its own batch's longest, not to a random one's."""
    return np.argsort([len(ids) for ids in dataset["input_ids"]], kind="stable")


def id2label_of(meta: dict[str, Any]) -> dict[int, str]:
    return labels_by_id(meta["id2label"])


def class_balance(dataset):
    """Rows and share per label for each split."""
    import pandas as pd

    frames = []
    for split, ds in dataset.items():
        counts = pd.Series(ds["label"]).value_counts().sort_index()
        frames.append(
            pd.DataFrame(
                {
                    "split": split,
                    "label": counts.index,
                    "rows": counts.values,
                    "share": (counts / counts.sum()).round(3).values,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def token_lengths(dataset, tokenizer) -> np.ndarray:
    """Untruncated token count of each review (special tokens included)."""
    # verbose=False: measuring reviews longer than the model takes is the point here, not a mistake to warn about
    encoded = tokenizer(list(dataset["text"]), truncation=False, verbose=False)
    return np.array([len(ids) for ids in encoded["input_ids"]])


def padding_waste(lengths: np.ndarray, max_length: int) -> dict[str, float]:
    """How many tokens padding every review to `max_length` costs, against padding per batch to the longest."""
    kept = np.minimum(lengths, max_length)
    return {
        "median_tokens": float(np.median(lengths)),
        "p90_tokens": float(np.percentile(lengths, 90)),
        "truncated_share": float(np.mean(lengths > max_length)),
        "max_length_over_real_tokens": float(max_length * len(kept) / kept.sum()),
    }


def quote_review(text: str, quote: bool = True, limit: int | None = None) -> str:
    """A review as a notebook shows it: the text, whitespace collapsed and cut at `limit` characters; or, with
    `quote=False`, only its length. Notebooks meant for publishing run with `quote_reviews = False`: the Yelp
    dataset's terms do not allow redistributing its reviews."""
    text = " ".join(str(text).split())
    if not quote:
        return f"[review not quoted: {len(text)} characters]"
    return text if limit is None or len(text) <= limit else text[: limit - 1] + "…"


def preview_reviews(dataset, n: int = 5, quote: bool = True, limit: int = 200):
    """The first `n` rows of a split: label, length in characters and the review (see `quote_review`)."""
    import pandas as pd

    rows = dataset.select(range(min(n, len(dataset))))
    return pd.DataFrame(
        {
            "label": rows["label"],
            "chars": [len(t) for t in rows["text"]],
            "review": [quote_review(t, quote, limit) for t in rows["text"]],
        }
    )


def leakage_takeaway(leakage: dict[str, int], n_test: int) -> str:
    """What the leakage counts mean for the test numbers, in one sentence."""
    dropped = leakage.get("dropped", 0)
    if not leakage["test_in_train_file"]:
        why = (
            f" ({dropped:,} that do were left out of the draw: drop_leaked is on)"
            if dropped
            else ", so none of them can be remembered from training"
        )
        return f"None of the {n_test:,} test reviews appears in the training file{why}."
    return (
        f"{leakage['test_in_train_file']:,} of the {n_test:,} test reviews also appear in the training file, "
        f"{leakage['test_in_train']:,} of them in the training sample the model learns from and "
        f"{leakage['test_in_validation']:,} in the validation split: the test numbers are partly measured on reviews "
        f"seen before; drop_leaked leaves them out of the test split."
    )


def data_takeaways(meta: dict[str, Any], balance, waste: dict[str, float], max_length: int) -> str:
    """What notebook 01 found, in Markdown, worded from its outputs: the split sizes, the class shares, whether test
    reviews also appear in the training file, the review lengths in tokens and what padding to `max_length` would
    cost."""
    rows = meta["rows"]
    sizes = f"{rows['train']:,} training reviews"
    if rows.get("validation"):
        sizes += f", {rows['validation']:,} validation reviews (for choices made during training)"
    sizes += f" and {rows['test']:,} test reviews (read once, for the final numbers)"
    shares = balance.groupby("split")["share"]
    spread = float((shares.max() - shares.min()).max())
    names = ", ".join(meta["id2label"].values())
    classes = (
        f"The {len(meta['id2label'])} classes ({names}) have equal shares in every split"
        if spread < 0.01
        else f"The class shares differ by up to {spread:.1%} within a split: watch precision and recall, not only "
        f"accuracy"
    )
    leakage = meta.get("leakage")
    lines = [f"- The run uses {sizes}, a seeded random sample stratified by label.", f"- {classes}."]
    if leakage is not None:
        lines.append(f"- {leakage_takeaway(leakage, rows['test'])}")
    return "\n".join(
        [
            *lines,
            f"- A median review is {waste['median_tokens']:.0f} tokens long and 90% are under "
            f"{waste['p90_tokens']:.0f}; {waste['truncated_share']:.1%} are cut at max_length {max_length}.",
            f"- Padding every review to {max_length} tokens would read {waste['max_length_over_real_tokens']:.1f}x "
            f"the real tokens; the collator in 02 pads each batch to its longest review instead.",
        ]
    )
