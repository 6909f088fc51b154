"""Rule extend_retraining_dataset: the previous round's data plus its fooling images."""

from evofool import retraining
from evofool.data import describe, load_dataset, save_dataset
from evofool.workflow import run_rule


def main(smk, log):
    data = load_dataset(smk.input.data)
    images = retraining.fooling_images(retraining.load_records(smk.input.runs), smk.params.images)
    extended = retraining.extend_dataset(data, images)
    save_dataset(extended, smk.output.data)
    counts = describe(extended)["train_per_class"]
    log(f"added {len(images)} fooling images; training images per class {counts}")


run_rule(main)
