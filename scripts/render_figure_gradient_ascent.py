"""Rule render_figure_gradient_ascent: images found by gradient ascent (FOOL Fig. 13)."""

from evofool.io import load_artifact
from evofool.plots import image_grid, save
from evofool.workflow import run_rule


def main(smk, log):
    r = load_artifact(smk.input.result)
    text = [[f"{100 * c:.2f}%" for c in r["confidences"].tolist()]]
    fig = image_grid(r["images"][None], ["gradient ascent"], r["classes"], text)
    save(fig, smk.output.figure)
    log(f"{len(r['classes'])} classes drawn")


run_rule(main)
