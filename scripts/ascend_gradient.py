"""Rule ascend_gradient: gradient ascent from the mean training image (FOOL Fig. 13)."""

from evofool.data import load_dataset, to_float
from evofool.devices import resolve_device
from evofool.evolution import gradient_ascent
from evofool.io import save_artifact
from evofool.models import load_model
from evofool.workflow import run_rule


def main(smk, log):
    settings = smk.params.settings
    model = load_model(smk.input.model, resolve_device(smk.params.device))
    data = load_dataset(smk.input.data)
    mean = to_float(data["x_train"]).mean(0)
    n = len(data["classes"])
    result = gradient_ascent(
        model,
        mean,
        list(range(n)),
        steps=settings["steps"],
        decay=settings["decay"],
        seed=smk.params.seed,
    )
    for k, steps in enumerate(result.steps_to.tolist()):
        conf = float(result.confidences[k])
        log(f"class {data['classes'][k]}: {conf:.6f}; steps to 99/99.9/99.99%: {steps}")
    save_artifact(
        {
            "classes": data["classes"],
            "images": result.images,
            "confidences": result.confidences,
            "steps_to": result.steps_to,
            "thresholds": list(result.thresholds),
            "steps": settings["steps"],
            "decay": settings["decay"],
        },
        smk.output.result,
    )


run_rule(main)
