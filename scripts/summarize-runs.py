#!/usr/bin/env python3
"""Mean +- sample std over seeds of the accuracies in qimera run folders.

Usage: summarize-runs.py RUN_DIR...   (each holding the summary.json that `qimera quantize` writes)
Every row of a run's result table ("naive 4w4a", "qimera 4w4a final epoch", ...) is grouped with the
same row of the other runs; the std uses n - 1. The naive starting point depends only on the seed,
so runs of several methods with one seed count it once. Epoch numbers in notes are dropped so that
best epochs of different seeds group together.
"""
import json
import re
import statistics
import sys
from collections import defaultdict


def rows(summary):
    """(label, top-1) pairs one run folder contributes."""
    for row in summary["rows"]:
        if "top1" not in row or row["label"] == "full precision":
            continue
        note = re.sub(r"\s*\(\d+\)", "", row["note"])
        yield f'{row["label"]} ({note})' if note else row["label"], row["top1"]


def main(dirs):
    groups = defaultdict(dict)
    for d in dirs:
        with open(f"{d}/summary.json") as f:
            summary = json.load(f)
        if "rows" not in summary:
            sys.exit(f"{d}/summary.json has no 'rows': it was written by a qimera from before the "
                     "methods split; rerun that run or summarize it by hand")
        seed = summary.get("seed", d)
        for label, top1 in rows(summary):
            key = seed if label.startswith("naive") else d
            groups[label][key] = top1
    print("| result | top-1 % mean +- std | runs | per run |")
    print("|---|---|---|---|")
    for label, by_run in groups.items():
        values = list(by_run.values())
        # One run has no spread: say so rather than print "+- nan".
        spread = f" +- {statistics.stdev(values):.2f}" if len(values) > 1 else " (one run)"
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {label} | {statistics.mean(values):.2f}{spread} | {len(values)} | {runs} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
