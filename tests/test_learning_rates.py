"""benchmarks/learning_rates.py: every configuration at a third of, at, and at three times its default rate."""

import json
import sys

import pytest
from conftest import ROOT

sys.path.insert(0, str(ROOT / "benchmarks"))
import learning_rates  # noqa: E402


@pytest.mark.slow
def test_three_rates_around_the_default_are_trained_and_reported(tmp_path, capsys):
    args = ["--profile", "smoke", "--configs", "head", "--runs", str(tmp_path / "runs"), "--output", str(tmp_path)]
    assert learning_rates.main(args) == 0
    saved = json.loads((tmp_path / "learning_rates-smoke.json").read_text())
    rates = [row["learning_rate"] for row in saved["rows"]]
    assert rates == [0.000667, 0.002, 0.006]  # the head's default 2e-3, a third of it, three times it
    assert [row["default"] for row in saved["rows"]] == [False, True, False]
    assert all(0 <= row["accuracy"] <= 1 for row in saved["rows"])
    assert saved["best"]["head"] in rates
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["head-lr0.000667", "head-lr0.002", "head-lr0.006"]
    assert "head" in capsys.readouterr().out


def test_a_configuration_without_a_learning_rate_is_refused(tmp_path, capsys):
    assert learning_rates.main(["--profile", "smoke", "--configs", "none", "--output", str(tmp_path)]) == 2
    assert "trains nothing" in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
