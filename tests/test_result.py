"""bertpeft.result: the one type of a result and the one reader of its JSON. A result of another schema, or one that
lacks or adds a field, is refused with one line that names the file and the way to make it again; through the
command a user runs, it stops before any work and nothing is lost."""

import json

import pytest
from conftest import run_bertpeft

from bertpeft.result import SCHEMA, Result, ResultError, read_result


@pytest.fixture(scope="module")
def one_result(tmp_path_factory):
    """`bertpeft train --profile smoke --config none` once: a real result JSON and the folder it is in."""
    out = tmp_path_factory.mktemp("result") / "run"
    done = run_bertpeft("train", "--profile", "smoke", "--config", "none", "--output", out, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    return out, out / "results" / "none-seed42.json"


def test_a_written_result_reads_back_as_the_same_result_with_its_schema(one_result):
    _, path = one_result
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["schema"] == SCHEMA
    result = read_result(path)
    assert result.to_dict() == data
    assert result.config == "none" and result.seed == 42 and result.labels_by_id == {0: "negative", 1: "positive"}
    assert result.correct == tuple(int(p == y) for p, y in zip(data["test_predictions"], data["test_labels"]))


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"schema": SCHEMA + 1}, f"result schema {SCHEMA + 1}, this bertpeft reads {SCHEMA}: upgrade bertpeft"),
        ({"schema": 0}, "result schema 0, this bertpeft reads"),
        ({"accuracy": None, "drop": "accuracy"}, "lacks 'accuracy'"),
        ({"from_the_future": 1}, "holds 'from_the_future', which result schema"),
    ],
)
def test_a_result_of_another_layout_is_refused_in_one_line_naming_it(one_result, tmp_path, change, words):
    _, path = one_result
    data = json.loads(path.read_text(encoding="utf-8"))
    drop = change.pop("drop", None)
    data.update(change)
    if drop:
        del data[drop]
    planted = tmp_path / "none-seed42.json"
    planted.write_text(json.dumps(data), encoding="utf-8")
    with pytest.raises(ResultError) as raised:
        read_result(planted)
    message = str(raised.value)
    assert "\n" not in message and str(planted) in message and words in message, message


def test_a_folder_with_a_result_of_a_newer_schema_stops_train_before_any_work_and_keeps_it(one_result, tmp_path):
    import shutil

    from bertpeft.manifest import write

    source, _ = one_result
    out = tmp_path / "run"
    shutil.copytree(source, out)
    path = out / "results" / "none-seed42.json"
    data = json.loads(path.read_text(encoding="utf-8"))
    newer = json.dumps({**data, "schema": SCHEMA + 1}, indent=2) + "\n"
    write(out, path, newer)  # as a newer bertpeft would have written it: recorded in the folder's manifest
    done = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", out, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "results/none-seed42.json" in done.stderr, done.stderr
    assert "written by another version of bertpeft" in done.stderr and "--force" in done.stderr
    assert path.read_text(encoding="utf-8") == newer and not (out / "results" / "head-seed42.json").exists()


def test_a_result_is_built_only_from_the_fields_of_its_type():
    with pytest.raises(ResultError, match="lacks 'name'"):
        Result.from_dict({"config": "none"}, "results/x.json")
    with pytest.raises(ResultError, match="is not a result"):
        Result.from_dict([1, 2], "results/x.json")
