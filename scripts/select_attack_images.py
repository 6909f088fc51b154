"""Rule select_attack_images: correctly classified test images, in a seeded order."""

from evofool.data import load_dataset
from evofool.devices import resolve_device
from evofool.io import save_artifact
from evofool.models import load_model
from evofool.one_pixel import select_images
from evofool.workflow import run_rule


def main(smk, log):
    model = load_model(smk.input.model, resolve_device(smk.params.device))
    selection = select_images(
        model, load_dataset(smk.input.data), smk.params.n_images, smk.params.seed
    )
    log(f"clean test accuracy {selection['accuracy']:.4f}; {len(selection['y'])} images chosen")
    save_artifact(selection, smk.output.images)


run_rule(main)
