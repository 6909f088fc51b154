"""Rule render_figure_elites: final elites, a row per run and a column per class (Figs 4, 5)."""

import torch

from evofool.data import load_dataset
from evofool.evolution import MapElites
from evofool.plots import class_image_grid, save
from evofool.workflow import run_rule


def main(smk, log):
    classes = load_dataset(smk.input.data)["classes"]
    runs = [MapElites.load(p) for p in smk.input.runs]
    images = torch.stack([me.archive.images for me in runs])
    conf = torch.stack([me.archive.confidences for me in runs])
    conf[~torch.stack([me.archive.filled for me in runs])] = float("nan")
    fig = class_image_grid(images, conf, [f"run {i}" for i in range(len(runs))], classes)
    save(fig, smk.output.figure)
    log(f"{len(runs)} runs drawn")


run_rule(main)
