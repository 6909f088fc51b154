"""Rule render_figure_fitness: p(true) per generation of successful attacks (Fig 10)."""

import pandas as pd

from evofool import plots
from evofool.tables import fitness_curves
from evofool.workflow import run_rule


def main(smk, log):
    attacks = pd.read_csv(smk.input.attacks[0])
    curves = fitness_curves(attacks, limit=30)
    ax = plots.fitness_curves(curves, title=plots.setting_title(attacks))
    plots.save(ax.figure, smk.output.figure)
    log(f"{len(curves)} curves")


run_rule(main)
