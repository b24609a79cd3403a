"""Print the method-comparison table of docs/findings.md for a finished `methods` run folder, in Markdown.

    python scripts/methods_table.py runs/methods-reference

Every number comes from the run folder's result JSONs, through the function notebook 06 uses
(`bertpeft.methods.method_summary_table`): trainable parameters, accuracy as the mean over seeds with its 95%
interval, the median step time relative to full fine-tuning's with the same seed, the median training seconds and
peak memory; and, when notebook 06 has exported the adapters (`export/verification-*.json`), each adapter's size.
"""

import json
import re
import sys
from pathlib import Path

from bertpeft.methods import method_summary_table, size_text
from bertpeft.report import results_table


def table(run_dir: Path) -> str:
    summary = method_summary_table(results_table(run_dir))
    sizes = {}
    for path in sorted((run_dir / "export").glob("verification*.json")):  # notebook 03's LoRA and 06's others
        v = json.loads(path.read_text(encoding="utf-8"))
        sizes[re.sub(r"-seed\d+$", "", v["configuration"])] = v.get("adapter_mb")
    rows = [
        "| configuration | trainable params | accuracy (95% interval) | seeds | step / full's | train s | peak memory MB "
        "| adapter on disk |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for _, r in summary.iterrows():
        interval = (
            f"{r['accuracy']:.3f} ({r['accuracy_low']:.3f}-{r['accuracy_high']:.3f})"
            if r["accuracy_low"] == r["accuracy_low"] and r["accuracy_low"] is not None
            else f"{r['accuracy']:.3f}"
        )
        step = f"{r['step_vs_full']:.2f}x" if r["step_vs_full"] == r["step_vs_full"] and r["step_vs_full"] else "-"
        size = size_text(sizes[r["config"]]) if sizes.get(r["config"]) else "-"
        rows.append(
            f"| {r['config']} | {r['trainable_params']:,} | {interval} | {r['seeds']} | {step} | "
            f"{r['train_seconds']:.0f} | {r['peak_memory_mb']:,.0f} | {size} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    if len(sys.argv) != 2 or not (Path(sys.argv[1]) / "results").is_dir():
        print("usage: python scripts/methods_table.py RUN_FOLDER (a folder with results/)", file=sys.stderr)
        sys.exit(2)
    print(table(Path(sys.argv[1])))
