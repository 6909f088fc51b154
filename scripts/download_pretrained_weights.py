"""Rule download_pretrained_weights: torchvision's AlexNet weights, verified by their sha256."""

from evofool.pretrained import WEIGHTS_URL, download_weights
from evofool.workflow import run_rule


def main(smk, log):
    log(f"downloading {WEIGHTS_URL}")
    download_weights(smk.output.weights, smk.params.sha256)
    log(f"{smk.output.weights}: sha256 matches {smk.params.sha256}")


run_rule(main)
