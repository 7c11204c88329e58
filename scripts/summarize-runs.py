#!/usr/bin/env python3
"""Mean +- sample std over seeds of the final-epoch accuracies in qimera run folders.

Usage: summarize-runs.py RUN_DIR...   (each holding the summary.json that `qimera quantize` writes)
Runs are grouped by the label "<method> <bits>[ <calibration>]"; the std uses n - 1. The naive
starting point depends only on the seed, so runs of several methods with one seed count it once.
"""
import json
import statistics
import sys
from collections import defaultdict


def rows(summary):
    """(label, top-1) pairs one run folder contributes."""
    q = summary["quantization"]
    bits = f'{q["weight_bits"]}w{q["act_bits"]}a'
    if "ptq" in summary:
        yield f'ptq {bits} ({summary["ptq"]["calibration"]})', summary["ptq"]["test"]["top1"]
        return
    yield f'naive {bits}', summary["naive"]["top1"]
    final = summary["final_epoch"]
    yield f'{summary["method"]} {bits} final epoch', final["test_top1"]
    best = summary.get("best_epoch_selected_on_test_set")
    if best:
        yield f'{summary["method"]} {bits} best epoch (selected on the test set)', best["test_top1"]


def main(dirs):
    groups = defaultdict(dict)
    for d in dirs:
        with open(f"{d}/summary.json") as f:
            summary = json.load(f)
        seed = summary.get("options", {}).get("seed", d)
        for label, top1 in rows(summary):
            key = seed if label.startswith("naive") else d
            groups[label][key] = top1
    for label, by_run in groups.items():
        values = list(by_run.values())
        std = statistics.stdev(values) if len(values) > 1 else float("nan")
        runs = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {label} | {statistics.mean(values):.2f} +- {std:.2f} | {len(values)} | {runs} |")


if __name__ == "__main__":
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    main(sys.argv[1:])
