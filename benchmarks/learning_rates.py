"""Learning-rate check: each trainable configuration at its default rate, a third of it and three times it.

The defaults (each entry's learning_rate in bertpeft.configurations) come from the literature; this trains every configuration at
the three rates on the same data and seed and reports test accuracy, so a default that is far from the best of the
three shows. One seed and 1,000 test reviews: differences under about 2 points are noise. For example

    python benchmarks/learning_rates.py --profile quick --data ../shared/data/yelp_polarity

prints the table and writes benchmarks/results/learning_rates-quick.json (the runs go under runs/learning-rates/).
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # runs from a checkout without `pip install -e .`

from bertpeft.cli import add_overrides, add_profile  # noqa: E402
from bertpeft.config import CLI_SETTINGS, ConfigError, check_configuration, profile_config  # noqa: E402
from bertpeft.configurations import trains  # noqa: E402
from bertpeft.device import default_profile  # noqa: E402

FACTORS = (1 / 3, 1.0, 3.0)
SETTINGS = [name for name in CLI_SETTINGS if name not in ("learning_rate", "progress")]  # the sweep sets these two


def sweep(config, configurations, factors, runs: Path) -> list[dict]:
    from bertpeft.training import train_configuration

    rows = []
    for configuration in configurations:
        default = config.replace(configuration=configuration).learning_rate_for
        for factor in factors:
            rate = float(f"{default * factor:.3g}")
            run = config.replace(
                configuration=configuration, learning_rate=rate, output=str(runs / f"{configuration}-lr{rate:g}")
            )
            print(f"{configuration} at learning rate {rate:g} ({factor:.3g}x the default)", flush=True)
            result = train_configuration(run, benchmark=False)
            rows.append(
                {
                    "config": configuration,
                    "learning_rate": rate,
                    "default": factor == 1.0,
                    "accuracy": result.accuracy,
                    "f1": result.f1,
                    "final_loss": (result.loss_curve or [{}])[-1].get("loss"),
                    "train_seconds": result.train_seconds,
                }
            )
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_profile(parser)
    add_overrides(parser, SETTINGS)
    parser.add_argument("--configs", default="head,head+1,lora,full", help="comma-separated trainable configurations")
    parser.add_argument("--runs", default="runs/learning-rates", help="folder for the training runs")
    parser.add_argument("--output", default="benchmarks/results", help="folder for the JSON")
    args = parser.parse_args(argv)
    try:
        config = profile_config(
            args.profile or default_profile(), **{n: getattr(args, n, None) for n in SETTINGS}, progress="lines"
        )
        configurations = [c.strip() for c in args.configs.split(",") if c.strip()]
        for name in configurations:
            check_configuration(name)
            if not trains(name):
                raise ConfigError(f"configuration {name!r} trains nothing: it has no learning rate to check")
    except ConfigError as err:
        print(f"learning_rates: error: {err}", file=sys.stderr)
        return 2

    import pandas as pd

    from bertpeft.device import device_description
    from bertpeft.layout import atomic_write_json, git_state, package_versions

    start = time.time()
    rows = sweep(config, configurations, FACTORS, Path(args.runs))
    table = pd.DataFrame(rows)
    best = table.loc[table.groupby("config", sort=False)["accuracy"].idxmax(), ["config", "learning_rate"]]
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    path = Path(args.output) / f"learning_rates-{config.profile}.json"
    atomic_write_json(
        path,
        {
            "kind": "learning_rates",
            "run_config": config.to_dict(),
            "factors": FACTORS,
            "rows": rows,
            "best": dict(zip(best["config"], best["learning_rate"], strict=True)),
            "device": device_description(),
            "versions": package_versions(),
            "git": git_state(),
            "seconds": round(time.time() - start, 1),
        },
    )
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
