"""Rule import_pretrained_model: torchvision's AlexNet in the study's model format."""

from evofool.data import load_dataset
from evofool.devices import resolve_device
from evofool.io import write_json
from evofool.models import count_parameters, save_model
from evofool.pretrained import WEIGHTS_URL, pretrained_alexnet, verify_weights
from evofool.train import accuracy
from evofool.versions import environment
from evofool.workflow import run_rule


def main(smk, log):
    verify_weights(smk.input.weights, smk.params.sha256)
    model = pretrained_alexnet(smk.input.weights, smk.params.image_size)
    data = load_dataset(smk.input.data)
    device = resolve_device(smk.params.device)
    acc = accuracy(model.to(device), data["x_test"], data["y_test"], batch_size=64)
    metrics = {
        "dataset": smk.wildcards.dataset,
        "net": smk.wildcards.net,
        "arch": "alexnet",
        "width": 1.0,
        "seed": int(smk.wildcards.seed),
        "round": 1,
        "epochs": 0,
        "test_accuracy": acc,
        "test_images": len(data["y_test"]),
        "train_seconds": 0.0,
        "parameters": count_parameters(model),
        "device": str(device),
        "threads": smk.threads,
        "weights": str(smk.input.weights),
        "weights_sha256": smk.params.sha256,
        "weights_source": WEIGHTS_URL,
        **environment(),
    }
    save_model(model.cpu(), smk.output.model, meta=metrics)
    write_json(metrics, smk.output.metrics)
    log(f"pretrained AlexNet: top-1 {acc:.4f} on {len(data['y_test'])} ILSVRC images")


run_rule(main)
