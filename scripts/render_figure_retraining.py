"""Rule render_figure_retraining: Fig 11, a row per round of one run's final elites."""

import numpy as np
import pandas as pd
import torch

from evofool import retraining
from evofool.data import load_dataset
from evofool.plots import image_grid, save
from evofool.targets import path_wildcards
from evofool.workflow import run_rule


def main(smk, log):
    classes = load_dataset(smk.input.data)["classes"]
    by_round = {}
    for path in smk.input.runs:
        by_round.setdefault(int(path_wildcards(path)["round"]), []).extend(
            retraining.load_records([path])
        )
    medians = {
        int(path_wildcards(p)["round"]): 100 * pd.read_csv(p)["confidence"].median()
        for p in smk.input.elites
    }
    rng = np.random.default_rng(smk.params.seed)
    rows, labels, text = [], [], []
    for round_ in sorted(by_round):
        rec = by_round[round_][rng.integers(len(by_round[round_]))]
        images = rec["elites"][: len(classes)].float() / 255
        images[~rec["filled"][: len(classes)]] = float("nan")
        rows.append(images)
        labels.append(f"DNN$_{{{round_}}}$\nmedian {medians[round_]:.4f}%")
        conf = rec["confidences"][: len(classes)].tolist()
        text.append([f"{100 * c:.3f}%" if c == c else "" for c in conf])
    fig = image_grid(torch.stack(rows), labels, classes, text)
    fig.suptitle("Paper (MNIST): median ~99.99% every round; ImageNet 88.1% -> 11.7% after one")
    save(fig, smk.output.figure)
    log(f"{len(rows)} rounds drawn")


run_rule(main)
