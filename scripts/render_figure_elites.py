"""Rule render_figure_elites: final elites, a row per run and a column per class (Figs 4, 5)."""

import torch

from evofool.data import load_dataset
from evofool.evolution import MapElites
from evofool.plots import image_grid, save
from evofool.workflow import run_rule


def main(smk, log):
    classes = load_dataset(smk.input.data)["classes"]
    runs = [MapElites.load(p) for p in smk.input.runs]
    images = torch.stack([me.archive.images for me in runs])
    filled = torch.stack([me.archive.filled for me in runs])
    images[~filled] = float("nan")
    text = [
        [f"{100 * c:.2f}%" if c == c else "" for c in me.archive.confidences.tolist()]
        for me in runs
    ]
    fig = image_grid(images, [f"run {i}" for i in range(len(runs))], classes, text)
    save(fig, smk.output.figure)
    log(f"{len(runs)} runs drawn")


run_rule(main)
