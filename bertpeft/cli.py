"""`bertpeft` command line: params, prep, train, run, bench, export. Bad input exits 2 with one line, before any work."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Any

from .config import (
    ADAPTER,
    CLI_SETTINGS,
    CONFIGURATION_CHOICES,
    PEFT_METHODS,
    PROFILES,
    ConfigError,
    RunConfig,
    check_configuration,
    profile_config,
    setting_help,
)
from .data import DataError, leakage_sentence, prepare_reviews, resolve_data_source
from .device import default_profile, precision_words
from .export import UNMERGEABLE, check_can_publish, check_exportable, check_repo_id, export_adapter, publish
from .launch import cpu_processes_requested, relaunch_on_cpu_processes
from .layout import (
    WriteFault,
    check_folder_shape,
    check_output_folder,
    is_write_fault,
    one_writer,
    result_name,
)
from .manifest import claim_results
from .models import configuration_table, describe, load_tokenizer
from .series import SeriesPlan, run_series, same_settings
from .speed import DEFAULT_SECTIONS, SECTIONS, run_speed_benchmark
from .training import summary, train_configuration


class OneLineParser(argparse.ArgumentParser):
    """argparse, with a bad argument (`--epochs two`) refused in one line, like every other bad input: exit 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} ({self.prog} --help lists the options)\n")


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def add_overrides(parser: argparse.ArgumentParser, names=CLI_SETTINGS) -> None:
    """One --kebab-case flag per setting marked `cli` in RunConfig, typed from the field, helped by its metadata."""
    fields = {f.name: f for f in dataclasses.fields(RunConfig)}
    for name in names:
        kind = str(fields[name].type)
        convert = {"int": int, "float": float, "bool": _bool, "float | None": float}.get(kind, str)
        parser.add_argument(
            f"--{name.replace('_', '-')}",
            type=convert,
            default=None,
            help=f"{setting_help(name)} (default: the profile's)",
        )


def add_profile(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        default=None,
        help=f"named set of defaults: {', '.join(PROFILES)} (default: paper where a CUDA GPU is, else quick)",
    )


def config_from_args(args: argparse.Namespace, **extra: Any) -> RunConfig:
    overrides = {name: getattr(args, name, None) for name in CLI_SETTINGS}
    return profile_config(args.profile or default_profile(), **overrides, **extra)


def cmd_params(args: argparse.Namespace) -> int:
    configurations = tuple(c.strip() for c in args.configs.split(",")) if args.configs else None
    for name in configurations or ():
        check_configuration(name)
    rows = configuration_table(args.model, args.num_labels, configurations)
    if args.json:
        print(json.dumps([{k: r[k] for k in ("config", "trainable_params", "total_params")} for r in rows]))
    else:
        width = max(len(row["config"]) for row in rows)
        for row in rows:
            print(describe(row, width))
    return 0


def cmd_prep(args: argparse.Namespace) -> int:
    config = config_from_args(args, output=args.output)
    check_output_folder(config.run_dir)
    resolve_data_source(config.data)  # a missing --data path fails here, before any model is loaded
    with one_writer(config.run_dir):
        _, meta = prepare_reviews(config, load_tokenizer(config.model))
    print(f"prepared {meta['rows']} rows, labels {meta['id2label']} into {config.run_dir}")
    print(leakage_sentence(meta["leakage"], meta["rows"]["test"]))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    config = config_from_args(args, configuration=args.config, output=args.output)
    check_output_folder(config.run_dir)
    resolve_data_source(config.data)  # a missing --data path fails here, before any model is loaded
    # Under several processes (RANK set by the launcher) the main one holds the run folder's lock for all; when
    # this command starts the processes itself, they run under its lock.
    main_process = os.environ.get("RANK", "0") == "0"
    with one_writer(config.run_dir) if main_process else contextlib.nullcontext(False) as writer:
        if writer:  # the result this replaces aside, the folder's results must share its settings
            name = result_name(config.configuration, config.seed)
            claim_results(
                config, args.force, replacing=name, redo="remove them", same=same_settings(config), training=(name,)
            )
        processes = cpu_processes_requested()
        if processes > 1:
            return relaunch_on_cpu_processes(processes, args.argv)
        if main_process:
            print(f"{config.configuration}, seed {config.seed}: {precision_words(config.precision)}", flush=True)
        result = train_configuration(config)
    if os.environ.get("RANK", "0") == "0":  # one summary line, also under several processes
        print(summary(result))
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    seeds = args.seeds or (str(args.seed) if args.seed is not None else None)
    # The default folder is the profile's (runs/<profile>), never a new one per call: after Ctrl-C or a crash the
    # same command resumes there.
    config = config_from_args(args, configurations=args.configs, seeds=seeds, output=args.output)
    return run_series(config, SeriesPlan.of(config, force=args.force, quote_reviews=args.quote_reviews))


def cmd_bench(args: argparse.Namespace) -> int:
    if args.name is not None and (Path(args.name).name != args.name or args.name in ("", ".", "..")):
        raise ConfigError(
            f"--name {args.name!r} is a file name, not a path: give e.g. speed.json (--output is the folder)"
        )
    run_speed_benchmark(
        config_from_args(args),
        sections=args.sections,
        repeats=args.repeats,
        steps=args.steps,
        output=args.output,
        name=args.name,
        threads=args.threads,
        clock=args.clock,
    )
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    check_exportable(args.config)
    pushes = [r for r in (args.push_to_hub, args.push_merged_to) if r]
    for repo_id in pushes:  # a push that cannot happen stops the command before the export
        check_repo_id(repo_id)
    if args.push_merged_to and args.config in UNMERGEABLE:
        raise ConfigError(f"{args.config} cannot be merged ({UNMERGEABLE[args.config]}): push its adapter instead")
    if pushes:
        check_can_publish()
    # A folder that does not exist holds no trained configuration: export_adapter says so
    if os.path.isdir(args.output):
        check_folder_shape(args.output)
    with one_writer(args.output) if os.path.isdir(args.output) else contextlib.nullcontext(False):
        v = export_adapter(args.output, args.config, seed=args.seed, n_reviews=args.reviews)
    diff = f"logits max abs diff {max(v['max_abs_diff'].values()):.1e} on {v['reviews']} test reviews"
    for repo_id, folder in ((args.push_to_hub, "adapter_dir"), (args.push_merged_to, "merged_dir")):
        if repo_id:
            print(f"published {Path(v[folder]).name} to {repo_id}: {publish(v[folder], repo_id, args.private)}")
    if v.get("merge_refused"):
        print(
            f"exported {v['configuration']}: adapter {v['adapter_mb']:.2f} MB in {v['adapter_dir']}, {diff}; "
            f"not merged: {v['merge_refused']}"
        )
        return 0
    print(
        f"exported {v['configuration']}: adapter {v['adapter_mb']:.2f} MB in {v['adapter_dir']}, merged "
        f"{v['merged_mb']:.2f} MB in {v['merged_dir']}; {diff}; pipeline labels {v['pipeline']['labels']}"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="bertpeft",
        description="Fine-tune BERT for review sentiment: six "
        "configurations from a frozen model to LoRA and full fine-tuning.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("params", help="print the configurations' trainable parameter counts (no training)")
    p.add_argument("--model", default="bert-base-cased", help="Hub id, model folder, minilm or tiny-random-bert")
    p.add_argument("--num-labels", type=int, default=2)
    p.add_argument(
        "--configs",
        help=f"comma-separated configurations (default: the six) of {CONFIGURATION_CHOICES}",
    )
    p.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    p.set_defaults(func=cmd_params)

    p = sub.add_parser("prep", help="load, sample and tokenize the reviews into a run folder")
    add_profile(p)
    add_overrides(p)
    p.add_argument("--output", required=True, help="run folder")
    p.set_defaults(func=cmd_prep)

    p = sub.add_parser("train", help="train and evaluate one configuration, writing its result JSON")
    add_profile(p)
    p.add_argument("--config", required=True, help=f"one of {CONFIGURATION_CHOICES}")
    add_overrides(p)
    p.add_argument("--output", required=True, help="run folder")
    p.add_argument("--force", action="store_true", help="remove the results in --output made with other settings")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("run", help="run the whole notebook series with papermill")
    add_profile(p)
    add_overrides(p)
    p.add_argument(
        "--configs",
        default=None,
        help=f"comma-separated configurations (default: the profile's) of {CONFIGURATION_CHOICES}",
    )
    p.add_argument("--seeds", default=None, help="comma-separated seeds (default: the profile's)")
    p.add_argument("--output", default=None, help="run folder (default: the profile's, runs/<profile>)")
    p.add_argument(
        "--force",
        action="store_true",
        help="re-run configurations already done in --output; remove its results made with other settings",
    )
    p.add_argument(
        "--no-quotes",
        dest="quote_reviews",
        action="store_false",
        help="executed notebooks show review lengths, not texts (for notebooks you publish)",
    )
    p.set_defaults(func=cmd_run)

    p = sub.add_parser(
        "bench", help="training-speed benchmark: our recipe against the write-ups', each configuration against full"
    )
    add_profile(p)
    add_overrides(p)
    p.add_argument("--repeats", type=int, default=3, help="interleaved repetitions (medians are reported)")
    p.add_argument("--steps", type=int, default=8, help="timed batches per setup and repetition")
    p.add_argument("--sections", default=",".join(DEFAULT_SECTIONS), help=f"comma-separated, of {','.join(SECTIONS)}")
    p.add_argument("--output", default="benchmarks/results", help="folder for the JSON")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="wall time, or process CPU time for a --threads 1 run on a shared machine",
    )
    p.add_argument("--name", default=None, help="JSON file name (default training_speed-PROFILE-DEVICE.json)")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser(
        "export", help="export a run's trained LoRA (or other PEFT) configuration: adapter alone and merged, verified"
    )
    p.add_argument("--output", required=True, help="run folder holding the trained configuration")
    p.add_argument(
        "--config",
        default=ADAPTER,
        help=f"which PEFT configuration: lora (default), lora-rN, {', '.join(PEFT_METHODS)} (prefix and prompt "
        "cannot be merged: adapter only)",
    )
    p.add_argument("--seed", type=int, default=None, help="which seed (default: the first one trained)")
    p.add_argument("--reviews", type=int, default=32, help="test reviews the equality check runs on")
    p.add_argument(
        "--push-to-hub",
        metavar="OWNER/NAME",
        help="after the checks pass, upload the adapter (with its card) to this Hub repository (created if missing; "
        "the token comes from HF_TOKEN or `hf auth login`)",
    )
    p.add_argument("--push-merged-to", metavar="OWNER/NAME", help="upload the merged model to this Hub repository")
    p.add_argument("--private", action="store_true", help="create the repositories private")
    p.set_defaults(func=cmd_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return args.func(args)
    except (ConfigError, DataError) as err:
        print(f"bertpeft: error: {err}", file=sys.stderr)
        return 2
    except WriteFault as err:
        print(f"bertpeft: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # a full disk met outside the run's own steps (e.g. safetensors says it in words)
        if not is_write_fault(err):
            raise
        where = getattr(err, "filename", None)
        print(f"bertpeft: {WriteFault.of(err, str(where) if where else 'a file')}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("bertpeft: interrupted: run the same command to resume", file=sys.stderr, flush=True)
        return 130
