"""The run configuration: every profile builds, bad values fail with the field's name, JSON round trips."""

import json

import pytest

from bertpeft.config import PROFILES, ConfigError, RunConfig, load_config, profile_config, unfrozen_layers


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_every_profile_builds(profile):
    config = profile_config(profile)
    assert config.profile == profile
    assert config.n_train > 0 and config.n_test > 0


def test_profiles_hold_the_briefs_sizes():
    assert (profile_config("paper").model, profile_config("paper").n_train, profile_config("paper").n_test) == (
        "bert-base-cased",
        10_000,
        2_000,
    )
    experiment_b = profile_config("experiment-b")
    assert (experiment_b.lora_r, experiment_b.lora_alpha, experiment_b.n_train, experiment_b.n_test) == (
        16,
        32,
        1_000,
        1_000,
    )


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"n_train": 0}, "n_train"),
        ({"n_train": -5}, "n_train"),
        ({"n_test": 0}, "n_test"),
        ({"lora_r": 0}, "lora_r"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -1e-3}, "learning_rate"),
        ({"configuration": "cfg4"}, "configuration"),
        ({"configuration": "head+0"}, "configuration"),
        ({"configuration": "head+"}, "configuration"),
        ({"configurations": ("head", "cfg4")}, "configuration"),
        ({"epochs": 0}, "epochs"),
        ({"report_to": "tensorboard"}, "report_to"),
        ({"epochs": float("inf")}, "epochs"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": "abc"}, "learning_rate"),
        ({"seed": -1}, "seed"),
        ({"data_seed": -1}, "data_seed"),
        ({"seeds": "1,-2"}, "seeds"),
        ({"seeds": "one"}, "seeds"),
        ({"group_by_length": "maybe"}, "group_by_length"),
        ({"n_validation": -1}, "n_validation"),
        ({"lr_factors": (0.0, 1.0)}, "lr_factors"),
        ({"tune_lr": True, "n_validation": 0}, "n_validation"),
        ({"lora_target_modules": "auto,query"}, "lora_target_modules"),
        ({"lora_target_modules": ""}, "lora_target_modules"),
    ],
)
def test_bad_values_name_the_field(overrides, field):
    with pytest.raises(ConfigError, match=field):
        profile_config("smoke", **overrides)


# Values as papermill, JSON or Python hand them over (any type), and the words the one-line refusal must hold: the
# field's name and the fix (an example of a good value, or the range).
WRONG_VALUES = [
    ({"learning_rate": "abc"}, ["learning_rate", "e.g. 2e-5"]),
    ({"learning_rate": "1e-3"}, ["learning_rate", "not text", "1.0e-3"]),
    ({"learning_rate": float("-inf")}, ["learning_rate", "finite"]),
    ({"epochs": "two"}, ["epochs", "e.g. 1 or 0.5"]),
    ({"epochs": float("inf")}, ["epochs", "finite", "e.g. 1 or 0.5"]),
    ({"epochs": [1]}, ["epochs", "finite"]),
    ({"group_by_length": "maybe"}, ["group_by_length", "True or False"]),
    ({"drop_leaked": "no"}, ["drop_leaked", "True or False"]),
    ({"seed": -1}, ["seed", "from 0 to 4294967295"]),
    ({"seed": 2**32}, ["seed", "from 0 to 4294967295"]),
    ({"seed": 1.5}, ["seed", "whole number"]),
    ({"data_seed": -3}, ["data_seed", "from 0"]),
    ({"seeds": -1}, ["seeds", "e.g. 1,2,3"]),
    ({"seeds": [1.5]}, ["seeds", "whole numbers"]),
    ({"seeds": [True]}, ["seeds", "whole numbers"]),
    ({"seeds": [2**40]}, ["seeds", "4294967295"]),
    ({"seeds": None}, ["seeds", "e.g. 1,2,3"]),
    ({"lr_factors": 3}, ["lr_factors", "e.g. 0.333,1,3,10"]),
    ({"configurations": 5}, ["configurations", "e.g. head,lora,full"]),
    ({"lora_target_modules": [1, 2]}, ["lora_target_modules", "query,value"]),
    ({"weight_decay": -0.1}, ["weight_decay", "0 or more"]),
    ({"n_train": "500"}, ["n_train", "whole number above 0"]),
    ({"data": None}, ["data", "e.g. yelp_polarity"]),
    ({"extra": "x"}, ["extra", "dict"]),
    ({"profile": ["smoke"]}, ["profile", "smoke"]),
]


@pytest.mark.parametrize(("overrides", "words"), WRONG_VALUES, ids=[repr(o) for o, _ in WRONG_VALUES])
def test_a_value_of_the_wrong_type_or_range_names_the_field_and_the_fix(overrides, words):
    settings = {"profile": "smoke", **profile_config("smoke").to_dict(), **overrides}
    with pytest.raises(ConfigError) as refused:
        RunConfig.from_dict(settings)  # the path of run_config.json, papermill's settings and Python alike
    message = str(refused.value)
    assert "\n" not in message
    for word in words:
        assert word in message, message


def test_seeds_from_the_command_line_are_text_and_numpy_integers_count_as_whole():
    import numpy as np

    assert profile_config("smoke", seeds="1, 2,3").seeds == (1, 2, 3)
    assert profile_config("smoke", seeds=[np.int64(7)]).seeds == (7,)
    assert profile_config("smoke", lr_factors="0.5,2").lr_factors == (0.5, 2.0)


@pytest.mark.parametrize(
    ("arguments", "words"),
    [
        ({"settings": {"learning_rate": "abc"}}, ["learning_rate", "e.g. 2e-5"]),
        ({"settings": {"epochs": "two"}}, ["epochs", "e.g. 1 or 0.5"]),
        ({"settings": {"group_by_length": "maybe"}}, ["group_by_length", "True or False"]),
        ({"settings": "n_train=500"}, ["settings", "dict", '"n_train": 500']),
        ({"settings": {1: 2}}, ["settings", "named by text"]),
        ({"profile": ["smoke"]}, ["profile", "smoke, quick"]),
        ({"output": 5}, ["output", "runs/quick"]),
        ({"seed": "1"}, ["seed", "whole number"]),  # a notebook's own parameter, e.g. 02's seed
    ],
)
def test_papermill_parameters_of_the_wrong_type_stop_with_one_line(tmp_path, arguments, words):
    from bertpeft.notebook import notebook_config

    arguments = {"output": str(tmp_path / "run"), "profile": "smoke", "settings": {}, **arguments}
    with pytest.raises(ConfigError) as refused:
        notebook_config(**arguments)
    message = str(refused.value)
    assert "\n" not in message and all(word in message for word in words), message
    assert not (tmp_path / "run").exists(), "nothing written"


def test_unknown_profile_is_named():
    with pytest.raises(ConfigError, match="profile 'nope'"):
        profile_config("nope")
    with pytest.raises(ConfigError, match="profile"):
        RunConfig(profile="nope")


def test_unknown_setting_is_named():
    with pytest.raises(ConfigError, match="n_trian"):
        RunConfig.from_dict({"n_trian": 10})


@pytest.mark.parametrize("n", [1, 2, 3, 11, 12, 100])
def test_head_plus_any_n_is_accepted(n):
    config = profile_config("smoke", configuration=f"head+{n}")
    assert unfrozen_layers(config.configuration) == n


def test_overrides_of_none_keep_the_profile_value():
    assert profile_config("smoke", n_train=None).n_train == PROFILES["smoke"]["n_train"]
    assert profile_config("smoke", n_train=7).n_train == 7


def test_json_round_trip(tmp_path):
    config = profile_config(
        "experiment-b",
        configuration="head+2",
        learning_rate=3e-4,
        seeds="1,2,3",
        lora_target_modules="query,key,value",
        output=str(tmp_path / "run"),
    )
    data = json.loads(config.to_json())
    assert data["seeds"] == [1, 2, 3]
    again = RunConfig.from_dict(data)
    assert again == config
    path = tmp_path / "config.json"
    path.write_text(config.to_json(), encoding="utf-8")
    assert load_config(path) == config


def test_lora_targets_default_to_auto_and_round_trip():
    """`auto` (the model type's targets, resolved against the model) is what a run records by default; it reads
    back as itself, and a run folder's JSON from before it (explicit names) still loads as those names."""
    config = profile_config("smoke")
    assert config.lora_target_modules == ("auto",)
    assert json.loads(config.to_json())["lora_target_modules"] == ["auto"]
    assert RunConfig.from_dict(json.loads(config.to_json())) == config
    assert profile_config("smoke", lora_target_modules="auto") == config
    older = {**config.to_dict(), "lora_target_modules": ["query", "value"]}
    assert RunConfig.from_dict(older).lora_target_modules == ("query", "value")


def test_default_learning_rates_differ_by_configuration():
    rates = {
        name: profile_config("paper", configuration=name).learning_rate_for
        for name in ("head", "head+1", "lora", "full")
    }
    assert rates["head"] > rates["lora"] > rates["full"] > 0
    assert profile_config("paper", configuration="full", learning_rate=1e-5).learning_rate_for == 1e-5


def test_an_apple_gpu_takes_smaller_batches_with_the_same_effective_batch():
    """On MPS the 512-token profiles train 4 reviews per pass and accumulate 4 passes (16, as on a GPU); an explicit
    batch is kept as given, and other devices keep the profile's."""
    on_mac = profile_config("paper", device="mps")
    assert (on_mac.train_batch_size, on_mac.gradient_accumulation) == (4, 4)
    b = profile_config("experiment-b", device="mps")
    assert b.train_batch_size * b.gradient_accumulation == PROFILES["experiment-b"]["train_batch_size"]
    assert (
        profile_config("paper", device="cuda").train_batch_size,
        profile_config("paper", device="cpu").gradient_accumulation,
    ) == (16, 1)
    assert profile_config("paper", device="mps", train_batch_size=8).gradient_accumulation == 1
    assert profile_config("quick", device="mps").train_batch_size == 16  # 128 tokens fit as they are


def test_a_notebook_by_hand_takes_new_settings_where_the_folder_holds_no_result_and_refuses_them_where_it_does(
    tmp_path, capsys
):
    from bertpeft.layout import atomic_write_json
    from bertpeft.notebook import notebook_config

    out = str(tmp_path / "run")
    assert notebook_config(out, "smoke", {"n_test": 24}).n_test == 24  # a first run that made nothing
    assert notebook_config(out, "smoke", {"n_test": 32}).n_test == 32
    assert "n_test 24 -> 32" in capsys.readouterr().out
    assert notebook_config(out, "smoke").n_test == 32, "the new settings are the folder's now"
    atomic_write_json(tmp_path / "run" / "results" / "head-seed42.json", {"name": "head-seed42"})
    with pytest.raises(ConfigError, match="n_test 32 -> 48"):
        notebook_config(out, "smoke", {"n_test": 48})
