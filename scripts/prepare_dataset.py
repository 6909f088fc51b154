"""Rule prepare_dataset: load one dataset from its source into the cached format."""

from pathlib import Path

from evofool.data import describe, prepare_dataset, save_dataset
from evofool.io import write_json
from evofool.workflow import run_rule


def main(smk, log):
    log(f"preparing dataset {smk.wildcards.dataset} from {smk.params.settings['source']}")
    data = prepare_dataset(
        smk.params.settings, resources=Path("resources/torchvision"), base=Path(".")
    )
    summary = describe(data)
    shape = "x".join(map(str, summary["image_shape"]))
    log(f"{summary['n_train']} train and {summary['n_test']} test images of shape {shape}")
    save_dataset(data, smk.output.data)
    write_json(summary, smk.output.summary)


run_rule(main)
