"""Rule transfer_fooling_images: score final elites on the other networks of the dataset."""

import pandas as pd

from evofool.devices import resolve_device
from evofool.evolution import MapElites
from evofool.fooling import run_columns, transfer_rows
from evofool.models import load_model
from evofool.workflow import run_rule


def main(smk, log):
    device = resolve_device(smk.params.device)
    others = [
        (load_model(path, device), f"{p['net']}/seed={p['seed']}", p["relation"])
        for path, p in zip(smk.input.others, smk.params.partners, strict=True)
    ]
    rows = []
    for path in smk.input.runs:
        me, ids = MapElites.load(path), run_columns(path)
        for model, name, relation in others:
            rows.append(transfer_rows(me, model, name, relation, **ids))
    pd.concat(rows).to_csv(smk.output.rows, index=False)
    log(f"{len(smk.input.runs)} runs scored on {len(others)} networks")


run_rule(main)
