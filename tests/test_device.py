"""The precision rule: `auto` follows what the hardware computes natively, and a run says what it chose."""

import json

import pytest
from conftest import a_result, run_bertpeft

from bertpeft import device
from bertpeft.config import ConfigError, profile_config
from bertpeft.manifest import result_differences


@pytest.mark.parametrize(
    "feature, expected", [("amx_bf16", "bf16"), ("avx512_bf16", "bf16"), (None, "fp32")], ids=["amx", "avx512", "avx2"]
)
def test_auto_on_a_cpu_is_bf16_only_where_the_cpu_has_native_bf16(monkeypatch, feature, expected):
    monkeypatch.setattr(device, "cpu_bf16_feature", lambda: feature)
    assert device.resolve_precision("auto", "cpu") == expected
    words = device.precision_words("auto", "cpu")
    assert words.startswith(f"precision {expected} (auto: ")
    assert (feature or "no native bf16") in words
    # an explicit choice wins over the hardware; fp16 on a CPU is refused with the fix
    assert device.resolve_precision("fp32", "cpu") == "fp32"
    assert device.resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ConfigError, match="fp16 needs a GPU"):
        device.resolve_precision("fp16", "cpu")


def test_bf16_asked_for_on_a_cpu_without_it_says_fp32_is_faster(monkeypatch):
    monkeypatch.setattr(device, "cpu_bf16_feature", lambda: None)
    assert "fp32 is faster here" in device.precision_words("bf16", "cpu")
    monkeypatch.setattr(device, "cpu_bf16_feature", lambda: "amx_bf16")
    assert device.precision_words("bf16", "cpu") == "precision bf16 (as asked)"


@pytest.mark.parametrize("native, expected", [(True, "bf16"), (False, "fp16")], ids=["ampere", "t4"])
def test_auto_on_cuda_is_bf16_where_native_and_fp16_on_a_t4(monkeypatch, native, expected):
    import torch

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: native)
    assert device.resolve_precision("auto", "cuda") == expected
    assert device.resolve_precision("auto", "mps") == "fp32"


def test_the_cpu_check_agrees_with_the_cpu_flags():
    # torch's own check and Linux's flags must tell the same story on the machine the tests run on
    try:
        flags = set(open("/proc/cpuinfo", encoding="utf-8").read().split())
    except OSError:
        pytest.skip("no /proc/cpuinfo here")
    feature = device.cpu_bf16_feature()
    assert (feature is not None) == bool(flags & {"amx_bf16", "avx512_bf16"})


def test_a_result_is_compared_by_the_precision_it_computed_in(monkeypatch):
    config = profile_config("smoke", output="runs/x")  # precision auto
    made = a_result(config, numeric_precision="fp32")
    monkeypatch.setattr(device, "cpu_bf16_feature", lambda: None)
    assert result_differences(config, made) == []
    # the same `auto` on a CPU with native bf16 means bf16: a folder of fp32 results does not take it silently
    monkeypatch.setattr(device, "cpu_bf16_feature", lambda: "amx_bf16")
    assert result_differences(config, made) == ["precision 'fp32' -> 'bf16'"]
    assert result_differences(config.replace(precision="fp32"), made) == []


def test_train_prints_the_precision_it_computes_in_and_records_it(tmp_path):
    out = tmp_path / "run"
    done = run_bertpeft("train", "--profile", "smoke", "--config", "head", "--output", out)
    assert done.returncode == 0, done.stderr
    expected = device.resolve_precision("auto", "cpu")
    assert f"head, seed 42: precision {expected} (auto: " in done.stdout
    result = json.loads((out / "results" / "head-seed42.json").read_text())
    assert result["numeric_precision"] == expected
