"""Write the generated sections of the README and of docs/findings.md from the committed reference results
(reference/quick/) and benchmark JSON, so that no measured figure in them is typed by hand:

    python scripts/readme_sections.py            # rewrite every section between its markers
    python scripts/readme_sections.py --check    # exit 1 naming each section that differs from its source

A section sits between `<!-- generated: NAME -->` and `<!-- /generated: NAME -->`; SECTIONS says what writes it.
Each section is in one of the documents, and each of them is in some document.
"""

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # runs from a checkout without `pip install -e .`

from bertpeft.models import HUB_IDS  # noqa: E402
from bertpeft.speed.analysis import (  # noqa: E402
    PRECISION_PARITY,
    load_precision_parity,
    precision_parity_table,
    precision_parity_words,
)


def shown(path: Path) -> str:
    """A path as the documents name it: relative to the repository when inside it."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def markdown_table(frame, formats: dict[str, str]) -> str:
    columns = [frame.index.name, *frame.columns]
    lines = ["| " + " | ".join(columns) + " |", "|---" + "|---:" * len(frame.columns) + "|"]
    for name, row in frame.iterrows():
        cells = [f"`{name}`"]
        for column in frame.columns:
            value = row[column]
            cells.append("" if value is None or value != value else format(value, formats.get(column, "")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def precision_section(results: Path) -> str:
    result = load_precision_parity(results / PRECISION_PARITY)
    if result is None:
        return f"(`benchmarks/results/{PRECISION_PARITY}` is not in this checkout.)"
    frame = precision_parity_table(result)
    formats = {
        "accuracy fp32": ".4f",
        "accuracy bf16": ".4f",
        "bf16 - fp32": "+.4f",
        "p (Holm)": ".2f",
        "training loop bf16/fp32": ".2f",
        "evaluation bf16/fp32": ".2f",
    }
    run = result["run_config"]
    model = HUB_IDS.get(run["model"], run["model"])
    head = (
        f"`python benchmarks/precision_parity.py --profile {result['profile']} --data ../shared/data/yelp_polarity "
        f"--seeds {','.join(map(str, result['seeds']))}` (`benchmarks/results/{PRECISION_PARITY}`: {model}, "
        f"{run['n_train']:,} training and {run['n_test']:,} test reviews, `max_length` {run['max_length']}, default "
        "rates; each configuration and seed trained in fp32 and in bf16 autocast, one after the other):"
    )
    return "\n\n".join([head, markdown_table(frame, formats), " ".join(precision_parity_words(result))])


def series_section(results: Path) -> str:
    """Where the quick series' minutes went on each CPU with native bf16 it was profiled on."""
    import json

    found = [
        (path, json.loads(path.read_text(encoding="utf-8")))
        for path in sorted(results.glob("series_profile-quick*.json"))
    ]
    found = [(path, r) for path, r in found if r.get("cpu_bf16_feature")]
    if not found:
        return "(no `benchmarks/results/series_profile-quick*.json` from a CPU with native bf16 in this checkout.)"
    said = []
    for path, r in found:
        parts = r["training_parts_seconds"]
        trainings = [s for s in r["steps"] if "training loop" in s]
        others = sum(s["seconds"] for s in r["steps"] if "training loop" not in s)
        ratio = r["wall_over_training_loops"]
        said.append(
            f"On a CPU with {r['cpu_bf16_feature']} (`benchmarks/results/{path.name}`: `--name {path.name}`, `auto` = "
            f"{r['precision']}, fp32 matrix products at {r['matmul_fp32_gflops_per_second_at_start']:.0f} GFLOP/s at "
            f"the start, code at commit {r['git'].get('sha', '?')[:7]}) the series took **{r['wall_seconds'] / 60:.1f} min** "
            f"({r['wall_seconds']:.0f} s). Its "
            f"{len(trainings)} training loops took {parts['training loop']:.0f} s, so wall time / training loops = "
            f"**{ratio:.2f}** (target <= 1.5: {'met' if ratio <= 1.5 else 'not met'}). The rest: final evaluations "
            f"{parts['final evaluation']:.0f} s, independent benchmarks {parts['independent benchmark']:.0f} s, "
            f"validation passes and checkpoints during training {parts['evaluations and saves during training']:.0f} s, "
            f"the other work of the training notebooks (kernel, imports, data, saving) "
            f"{parts['rest'] + parts['loading']:.0f} s, and the data, export and results notebooks {others:.0f} s."
        )
    return "\n\n".join(said)


def recipe_section(results: Path) -> str:
    import json

    found = sorted(results.glob("recipe_end_to_end-*.json"))
    if not found:
        return "(no `benchmarks/results/recipe_end_to_end-*.json` in this checkout.)"
    lines = [
        "| CPU | ours | the write-ups' | ours / the write-ups', training samples/s | whole command, times faster "
        "| target >= 4x |",
        "|---|---|---|---:|---:|---|",
    ]
    for path in found:
        r = json.loads(path.read_text(encoding="utf-8"))
        rows = {row["recipe"]: row for row in r["rows"]}
        ours, theirs = rows["ours"], rows["write-ups' recipe"]
        lines.append(
            f"| {r['cpu_bf16_feature'] or 'no native bf16'} (`{path.name}`) | {ours['precision']}, dynamic padding, "
            f"length-grouped | {theirs['precision']}, padded to {r['settings']['max_length']}, random order | "
            f"{r['ours_over_write_ups']['training_samples_per_second']:.2f}x | "
            f"{r['ours_over_write_ups']['command_wall_time']:.2f}x | "
            f"{'met' if r['ours_over_write_ups']['training_samples_per_second'] >= 4 else '**not met**'} |"
        )
    s = json.loads(found[0].read_text(encoding="utf-8"))["settings"]
    head = (
        f"`python benchmarks/recipe_end_to_end.py --profile {s['profile']} --data ../shared/data/yelp_polarity` runs "
        f"`bertpeft train --config full` with each recipe ({s['n_train']} training and {s['n_test']} test reviews, "
        f"`max_length` {s['max_length']}; medians of {s['repeats']} interleaved repeats):"
    )
    return head + "\n\n" + "\n".join(lines)


def headline_section(results: Path) -> str:
    """The reference run's results, from its results table (`reference/quick/results.csv`, one row per configuration
    and seed, as `bertpeft run` wrote it): the mean over seeds with the lowest and highest seed, the median training
    loop and step time relative to full fine-tuning's, the rate chosen on the validation reviews."""
    import pandas as pd

    from bertpeft.report import step_time_relative

    path = REFERENCE
    if not path.is_file():
        return f"(`{shown(path)}` is not in this checkout.)"
    table = pd.read_csv(path)
    steps = step_time_relative(table).set_index("config")["ratio"]
    lines = [
        "| configuration | trainable params | accuracy: mean of the seeds (lowest, highest) | F1 | training loop, s "
        "| step / full's | learning rate |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, group in table.groupby("config", sort=False):
        a = group["accuracy"]
        rate = group["learning_rate"].dropna()
        lines.append(
            f"| {name} | {int(group['trainable_params'].iloc[0]):,} | {a.mean():.3f} ({a.min():.3f}, {a.max():.3f}) "
            f"| {group['f1'].mean():.3f} | {group['train_seconds'].median():.0f} | "
            + (f"{steps[name]:.2f}x" if name in steps.index else "-")
            + f" | {f'{rate.iloc[0]:g}' if len(rate) else '-'} |"
        )
    first = table.iloc[0]
    model = HUB_IDS.get(first["model"], first["model"])
    return (
        f"The `{first['profile']}` profile's reference run ({model}, {first['device']}, {first['numeric_precision']}; "
        f"{table['seed'].nunique()} seeds per configuration, each rate chosen on the validation reviews; "
        f"`{shown(path)}`):\n\n" + "\n".join(lines)
    )


def reference_section(results: Path) -> str:
    """The reference run in full, from its committed folder (`reference/<profile>/`): the command, the setting, the
    results table with intervals and paired tests, notebook 04's findings worded from the same results, and how long
    each part of the series took."""
    import json

    from reference_table import table, wall_times

    from bertpeft.layout import read_results
    from bertpeft.report import paired_tests, results_table, results_takeaways

    folder = REFERENCE.parent
    if not (folder / "results").is_dir():
        return f"(`{shown(folder)}/results/` is not in this checkout.)"
    status = json.loads((folder / "run_status.json").read_text(encoding="utf-8"))
    run = json.loads((folder / "run_config.json").read_text(encoding="utf-8"))
    where = shown(folder)
    command = " ".join(["bertpeft", *status["argv"]])
    model = HUB_IDS.get(run["model"], run["model"])
    setting = (
        f"`{command}` ({model}; {run['n_train']:,} training, {run['n_validation']:,} validation and "
        f"{run['n_test']:,} test reviews; `max_length` {run['max_length']}; {run['epochs']:g} epoch(s) at batch size "
        f"{run['train_batch_size']}; {len(run['seeds'])} seeds per configuration). Its results are in `{where}/`: one "
        "JSON per configuration and seed with every test review's label, prediction and score (by position in the "
        "test split), from which every interval and test below can be recomputed; `python scripts/reference_table.py "
        f"{where}` prints this table."
    )
    findings = results_takeaways(results_table(folder), paired_tests(read_results(folder)))
    times = wall_times(folder).splitlines()
    return "\n\n".join(
        [
            setting,
            table(folder),
            "Accuracy: the mean over seeds with a 95% two-level bootstrap interval (the seeds resampled, then the "
            "test reviews); F1 and `train s` (the training loop alone: no evaluation, saving or loading) are mean ± "
            "sd over seeds; `step / full's` is the median time per training step divided by full fine-tuning's with "
            "the same seed and batches; the paired test compares each configuration with full on the same test "
            "reviews, pooled over seeds, Holm-corrected over all of them.",
            findings,
            f"Time ({times[0]}): " + "; ".join(line.removeprefix("- ") for line in times[1:]) + ".",
        ]
    )


def minutes_section(results: Path) -> str:
    """How long the quick series took, from the series profiles (one per kind of CPU it was measured on): one line
    for the README's first screen."""
    import json

    found = []
    for path in sorted(results.glob("series_profile-quick*.json")):
        r = json.loads(path.read_text(encoding="utf-8"))
        feature = r.get("cpu_bf16_feature")
        kind = f"with native bf16 ({feature})" if feature else "without native bf16"
        found.append(
            (r["wall_seconds"], f"{r['wall_seconds'] / 60:.0f} minutes in {r.get('precision', 'fp32')} on a CPU {kind}")
        )
    if not found:
        return "(no `benchmarks/results/series_profile-quick*.json` in this checkout.)"
    said = [words for _, words in sorted(found, reverse=True)]
    listed = ", ".join(said[:-1]) + (" and " if len(said) > 1 else "") + said[-1]
    return (
        f"On 2 CPU cores the `quick` series (one seed, default rates) took {listed} "
        "(`benchmarks/results/series_profile-quick*.json`)."
    )


REFERENCE = ROOT / "reference" / "quick" / "results.csv"  # the reference run's results table (--reference)
SECTIONS = {
    "headline": headline_section,
    "reference": reference_section,
    "minutes": minutes_section,
    "precision": precision_section,
    "series_bf16": series_section,
    "recipe_end_to_end": recipe_section,
}
DOCUMENTS = (ROOT / "README.md", ROOT / "docs" / "findings.md")


def generated(document: str, results: Path) -> tuple[str, list[str], list[str]]:
    """The document with each section it holds rewritten; the names of those it holds and of those that changed."""
    held, changed = [], []
    for name, write in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(\n<!-- /generated: {name} -->)", re.S)
        match = pattern.search(document)
        if match is None:
            continue
        held.append(name)
        text = write(results)
        if match.group(2) != text:
            changed.append(name)
            document = document[: match.start(2)] + text + document[match.end(2) :]
    return document, held, changed


def main(argv=None) -> int:
    global REFERENCE
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a section is stale")
    parser.add_argument("--documents", type=Path, nargs="+", default=list(DOCUMENTS))
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    parser.add_argument("--reference", type=Path, default=REFERENCE, help="the reference run's results table")
    args = parser.parse_args(argv)
    REFERENCE = args.reference
    found, stale = [], []
    for path in args.documents:
        text, held, changed = generated(path.read_text(encoding="utf-8"), args.results)
        found += held
        stale += [f"{path.name} section {name!r}" for name in changed]
        if changed and not args.check:
            path.write_text(text, encoding="utf-8")
    missing = [name for name in SECTIONS if name not in found]
    if missing:
        raise SystemExit(f"readme_sections: no document holds {missing} (<!-- generated: NAME --> markers)")
    if args.check:
        for where in stale:
            print(f"{where} differs from its source: run python scripts/readme_sections.py")
        return 1 if stale else 0
    print(f"rewrote {', '.join(stale) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
