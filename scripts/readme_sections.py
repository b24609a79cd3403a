"""Write the README's generated sections from the committed benchmark JSON, so that no measured figure in them is
typed by hand:

    python scripts/readme_sections.py            # rewrite every section between its markers
    python scripts/readme_sections.py --check    # exit 1 naming each section that differs from its JSON

A section sits between `<!-- generated: NAME -->` and `<!-- /generated: NAME -->`; SECTIONS says what writes it.
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


SECTIONS = {"precision": precision_section}


def generated(readme: str, results: Path) -> tuple[str, list[str]]:
    """The README with every section rewritten, and the names of those that changed."""
    changed = []
    for name, write in SECTIONS.items():
        pattern = re.compile(rf"(<!-- generated: {name} -->\n)(.*?)(\n<!-- /generated: {name} -->)", re.S)
        match = pattern.search(readme)
        if match is None:
            raise SystemExit(f"readme_sections: README has no section {name!r} (<!-- generated: {name} --> markers)")
        text = write(results)
        if match.group(2) != text:
            changed.append(name)
            readme = readme[: match.start(2)] + text + readme[match.end(2) :]
    return readme, changed


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a section is stale")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    parser.add_argument("--results", type=Path, default=ROOT / "benchmarks" / "results")
    args = parser.parse_args(argv)
    text, changed = generated(args.readme.read_text(encoding="utf-8"), args.results)
    if args.check:
        for name in changed:
            print(f"README section {name!r} differs from its JSON: run python scripts/readme_sections.py")
        return 1 if changed else 0
    args.readme.write_text(text, encoding="utf-8")
    print(f"rewrote {', '.join(changed) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
