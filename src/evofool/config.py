"""The study's config: JSON-schema validation with defaults, and errors in one line."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from evofool.errors import EvofoolError
from evofool.models import ARCHITECTURES
from evofool.targets import IMAGENET


def _with_defaults(validator_class: type) -> type:
    """A validator class that fills in each property's ``default`` while validating."""
    validate_properties = validator_class.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for name, sub in properties.items():
                if "default" in sub and name not in instance:
                    instance[name] = copy.deepcopy(sub["default"])
        yield from validate_properties(validator, properties, instance, schema)

    return jsonschema.validators.extend(validator_class, {"properties": set_defaults})


_Validator = _with_defaults(jsonschema.Draft7Validator)


def _describe(error: jsonschema.ValidationError) -> str:
    """One line: the key's dotted path, what is wrong, and what is allowed."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and "properties" in schema:
        allowed = ", ".join(sorted(schema["properties"]))
        return f"config key {where}: {error.message}; allowed keys: {allowed}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config key {where}: {error.instance!r} is not allowed; choose one of: {allowed}"
    if error.validator == "pattern" and error.absolute_path == error.relative_path:
        return f"config key {where}: {error.message}"
    return f"config key {where}: {error.message}"


def validate_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """Validate ``config`` in place against the schema, fill defaults, and check cross-references.

    Raises:
        EvofoolError: naming the first offending key and the allowed values.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    errors = sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        best = jsonschema.exceptions.best_match(errors)
        raise EvofoolError(_describe(best))
    add_imagenet(config)
    _check_networks(config)
    _check_attacked_models(config, "one_pixel")
    _check_attacked_models(config, "fooling")
    _check_attacked_models(config, "retraining")
    _check_retraining(config)
    return config


def add_imagenet(config: dict[str, Any]) -> None:
    """Turn the imagenet switch into the dataset, network and attacks it stands for.

    With ``imagenet.enabled`` the config gains the dataset ``imagenet`` (source ``ilsvrc``), the
    network ``imagenet/alexnet`` (torchvision's pretrained weights, seed 0), and that network
    in ``one_pixel.models`` and ``fooling.models`` (each unless its subsection is disabled).

    Raises:
        EvofoolError: If the images folder is not set, or the names are already taken.
    """
    s = config.get("imagenet", {})
    if not s.get("enabled"):
        return
    if not s.get("images"):
        raise EvofoolError(
            "config key imagenet.images: the ImageNet experiments need a folder of ILSVRC images "
            "with one subfolder per class; set it, or set imagenet.enabled: false"
        )
    if IMAGENET in config.get("datasets", {}) or IMAGENET in config.get("networks", {}):
        raise EvofoolError(
            f"config key datasets.{IMAGENET}: the name {IMAGENET!r} is reserved for the "
            "imagenet section; rename your dataset"
        )
    size = s["image_size"]
    config["datasets"][IMAGENET] = {
        "source": "ilsvrc", "images": s["images"], "synsets": s["synsets"],
        "max_images": s["max_images"], "image_size": [size, size], "split_seed": 0,
    }  # fmt: skip
    config.setdefault("networks", {})[IMAGENET] = {
        "alexnet": {"arch": "alexnet", "pretrained": True, "seeds": [0]}
    }
    for section in ("one_pixel", "fooling"):
        if s[section]["enabled"]:
            models = config[section].setdefault("models", [])
            if f"{IMAGENET}/alexnet" not in models:
                models.append(f"{IMAGENET}/alexnet")


def _check_retraining(config: Mapping[str, Any]) -> None:
    """A source run's generation holds enough images for half of ``images_per_run``."""
    s = config.get("retraining", {})
    if s.get("models") and s["images_per_run"] - s["images_per_run"] // 2 > s["population"]:
        raise EvofoolError(
            f"config key retraining.images_per_run: {s['images_per_run']} images per run need "
            f"{s['images_per_run'] - s['images_per_run'] // 2} from one generation, but "
            f"retraining.population is {s['population']}: raise the population or lower it"
        )


def _check_networks(config: Mapping[str, Any]) -> None:
    datasets = config.get("datasets", {})
    for dataset, nets in config.get("networks", {}).items():
        if dataset not in datasets:
            known = ", ".join(sorted(datasets)) or "none"
            raise EvofoolError(
                f"config key networks.{dataset}: no dataset named {dataset!r} "
                f"(datasets defined: {known})"
            )
        for net, settings in nets.items():
            settings.setdefault("arch", net)
            if settings["arch"] not in ARCHITECTURES:
                raise EvofoolError(
                    f"config key networks.{dataset}.{net}.arch: unknown network "
                    f"{settings['arch']!r}; choose one of: {', '.join(ARCHITECTURES)} "
                    "(or set arch explicitly)"
                )
            if settings.get("pretrained") and (dataset, net) != (IMAGENET, "alexnet"):
                raise EvofoolError(
                    f"config key networks.{dataset}.{net}.pretrained: only {IMAGENET}/alexnet "
                    "has pretrained weights (set imagenet.enabled instead); train this network"
                )


def _check_imagenet_paths(config: Mapping[str, Any], base: Path) -> None:
    """The imagenet section's folder, synsets file and weights file exist where it says."""
    s = config.get("imagenet", {})
    if not s.get("enabled"):
        return
    wanted = (
        ("images", "folder of ILSVRC images (a subfolder per class)", Path.is_dir),
        ("synsets", "synsets file", Path.is_file),
        (
            "weights",
            "AlexNet weights file (alexnet-owt-7be5be79.pth; null downloads it)",
            Path.is_file,
        ),
    )
    for key, what, exists in wanted:
        if s.get(key) and not exists(base / s[key]):
            raise EvofoolError(
                f"config key imagenet.{key}: {what} {base / s[key]} not found; stage it there "
                "or fix the path"
            )


def check_local_paths(config: Mapping[str, Any], base: str | Path) -> None:
    """Fail early when local files (npz, imagefolder, the imagenet section's) are missing."""
    base = Path(base)
    _check_imagenet_paths(config, base)
    for name, ds in config.get("datasets", {}).items():
        if ds["source"] not in ("npz", "imagefolder"):
            if ds["source"] == "torchvision" and "name" not in ds:
                raise EvofoolError(
                    f"config key datasets.{name}.name: the torchvision source needs name "
                    "(mnist or cifar10)"
                )
            continue
        for split in ("train", "test"):
            if split not in ds:
                raise EvofoolError(
                    f"config key datasets.{name}.{split}: the {ds['source']} source needs a "
                    f"{split} path"
                )
            spec = ds[split]
            path = base / (spec if isinstance(spec, str) else spec["path"])
            ok = path.is_file() if ds["source"] == "npz" else path.is_dir()
            if not ok:
                kind = "file" if ds["source"] == "npz" else "folder"
                raise EvofoolError(
                    f"config key datasets.{name}.{split}: {kind} {path} not found; stage the "
                    "data there or fix the path"
                )


def _check_attacked_models(config: Mapping[str, Any], section: str) -> None:
    """Every ``dataset/net`` a section attacks is a trained network with that seed."""
    settings = config.get(section, {})
    seed = settings.get("model_seed", 0)
    for key in settings.get("models", []):
        dataset, net = key.split("/")
        nets = config.get("networks", {}).get(dataset, {})
        if net not in nets:
            networks = config.get("networks", {})
            known = ", ".join(f"{d}/{n}" for d, ns in networks.items() for n in ns)
            raise EvofoolError(
                f"config key {section}.models: {key!r} is not a trained network; "
                f"choose from: {known or 'none (add one under networks)'}"
            )
        if seed not in nets[net].get("seeds", [0]):
            raise EvofoolError(
                f"config key {section}.model_seed: {key} is trained with seeds "
                f"{nets[net].get('seeds', [0])}, not {seed}"
            )
