"""Rule render_figure_gradient_ascent: images found by gradient ascent (FOOL Fig. 13)."""

from evofool.io import load_artifact
from evofool.plots import class_image_grid, save
from evofool.workflow import run_rule


def main(smk, log):
    r = load_artifact(smk.input.result)
    fig = class_image_grid(
        r["images"][None], r["confidences"][None], ["gradient ascent"], r["classes"]
    )
    save(fig, smk.output.figure)
    log(f"{len(r['classes'])} classes drawn")


run_rule(main)
