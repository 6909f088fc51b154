"""The study's config: JSON-schema validation with defaults, and errors in one line."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from evofool.errors import EvofoolError
from evofool.plan import ARCHITECTURES, IMAGENET, PRETRAINED_SEED


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


def _error_line(error: jsonschema.ValidationError) -> str:
    """One line: the key's dotted path, what is wrong, and what is allowed."""
    where = ".".join(str(p) for p in error.absolute_path) or "(top level)"
    schema = error.schema if isinstance(error.schema, dict) else {}
    if error.validator == "additionalProperties" and "properties" in schema:
        allowed = ", ".join(sorted(schema["properties"]))
        return f"config key {where}: {error.message}; allowed keys: {allowed}"
    if error.validator == "enum":
        allowed = ", ".join(map(str, error.validator_value))
        return f"config key {where}: {error.instance!r} is not allowed; choose one of: {allowed}"
    if error.validator == "oneOf":
        allowed = [_alternative(option) for option in error.validator_value]
        if None not in allowed:
            choices = " or ".join(allowed)
            return f"config key {where}: {error.instance!r} is not allowed; give {choices}"
    return f"config key {where}: {error.message}"


def _alternative(option: Mapping[str, Any]) -> str | None:
    """A schema alternative in words (a constant or a bounded number), else None."""
    if "const" in option:
        return repr(option["const"])
    if option.get("type") in ("integer", "number"):
        bound = f" >= {option['minimum']}" if "minimum" in option else ""
        return f"an {option['type']}{bound}"
    return None


def _typed_from_text(error: jsonschema.ValidationError) -> tuple[bool, Any]:
    """The value a text stands for when the schema wants a number, boolean or null there.

    ``snakemake --config 'one_pixel={"generations": 21}'`` hands nested values over as text;
    the schema's type says how to read them. Returns (True, value) when the text, read as
    YAML, has one of the wanted types, else (False, None).
    """
    if error.validator not in ("type", "oneOf") or not isinstance(error.instance, str):
        return False, None
    try:
        value = yaml.safe_load(error.instance)
    except yaml.YAMLError:
        return False, None
    if isinstance(value, str):
        return False, None
    wanted = {"type": error.validator_value} if error.validator == "type" else error.schema
    return jsonschema.Draft7Validator(wanted).is_valid(value), value


def _read_typed_text(config: dict[str, Any], errors: list[jsonschema.ValidationError]) -> bool:
    """Replace text values that the schema wants as numbers, booleans or null; True if any."""
    changed = False
    for error in errors:
        ok, value = _typed_from_text(error)
        if ok and error.absolute_path:
            *parents, last = error.absolute_path
            holder: Any = config
            for key in parents:
                holder = holder[key]
            holder[last] = value
            changed = True
    return changed


def _schema_errors(config: dict[str, Any], schema: Mapping[str, Any]) -> list:
    return sorted(_Validator(schema).iter_errors(config), key=lambda e: list(e.absolute_path))


def _validate(instance: dict[str, Any], schema: Mapping[str, Any]) -> None:
    """Check ``instance`` in place: fill defaults, read typed text, one line for the first error.

    Raises:
        EvofoolError: naming the first offending key and the allowed values.
    """
    errors = _schema_errors(instance, schema)
    while errors and _read_typed_text(instance, errors):
        errors = _schema_errors(instance, schema)
    if errors:
        raise EvofoolError(_error_line(jsonschema.exceptions.best_match(errors)))


def validate_schema(config: dict[str, Any], schema_path: str | Path) -> None:
    """Check ``config`` against the schema in place: fill defaults, read typed text.

    Raises:
        EvofoolError: naming the first offending key and the allowed values.
    """
    _validate(config, yaml.safe_load(Path(schema_path).read_text()))


def dataset_settings(entry: Mapping[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """One ``datasets`` entry, validated on its own with the schema's defaults filled in.

    For code that prepares a dataset outside the workflow (tests, benchmarks).

    Raises:
        EvofoolError: naming the first offending key and the allowed values.
    """
    schema = yaml.safe_load(Path(schema_path).read_text())
    settings = copy.deepcopy(dict(entry))
    _validate(settings, {"definitions": schema["definitions"], "$ref": "#/definitions/dataset"})
    return settings


def resolve_config(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """The study config, ready to plan from, built in place from what the user wrote.

    Three steps: validate against the schema (filling every default), expand the ImageNet
    switch into the dataset, network and attacks it stands for, and check the
    cross-references between sections.

    Raises:
        EvofoolError: naming the first offending key and what to do.
    """
    validate_schema(config, schema_path)
    expand_imagenet_switch(config)
    _check_networks(config)
    _check_attacked_models(config, "one_pixel")
    _check_attacked_models(config, "fooling")
    _check_attacked_models(config, "retraining")
    _check_retraining(config)
    return config


def expand_imagenet_switch(config: dict[str, Any]) -> None:
    """Turn the imagenet switch into the dataset, network and attacks it stands for.

    With ``imagenet.enabled`` the config gains the dataset ``imagenet`` (source ``ilsvrc``), the
    network ``imagenet/alexnet`` (torchvision's pretrained weights, seed 0), and that network
    in ``one_pixel.models`` and ``fooling.models`` (each unless its subsection is disabled).
    ``config`` must have passed :func:`validate_schema`.

    Raises:
        EvofoolError: If the images folder is not set, or the names are already taken.
    """
    s = config["imagenet"]
    if not s["enabled"]:
        return
    if not s.get("images"):
        raise EvofoolError(
            "config key imagenet.images: the ImageNet experiments need a folder of ILSVRC images "
            "with one subfolder per class; set it, or set imagenet.enabled: false"
        )
    if IMAGENET in config["datasets"] or IMAGENET in config["networks"]:
        raise EvofoolError(
            f"config key datasets.{IMAGENET}: the name {IMAGENET!r} is reserved for the "
            "imagenet section; rename your dataset"
        )
    size = s["image_size"]
    config["datasets"][IMAGENET] = {
        "source": "ilsvrc",
        "images": s["images"],
        "synsets": s["synsets"],
        "max_images": s["max_images"],
        "image_size": [size, size],
        "split_seed": 0,
        "train_size": None,
        "test_size": None,
    }
    config["networks"][IMAGENET] = {
        "alexnet": {"arch": "alexnet", "pretrained": True, "seeds": [PRETRAINED_SEED]}
    }
    for section in ("one_pixel", "fooling"):
        if s[section]["enabled"]:
            models = config[section]["models"]
            if f"{IMAGENET}/alexnet" not in models:
                models.append(f"{IMAGENET}/alexnet")


def _check_retraining(config: Mapping[str, Any]) -> None:
    """A source run's generation holds enough images for half of ``images_per_run``."""
    s = config["retraining"]
    if s["models"] and s["images_per_run"] - s["images_per_run"] // 2 > s["population"]:
        raise EvofoolError(
            f"config key retraining.images_per_run: {s['images_per_run']} images per run need "
            f"{s['images_per_run'] - s['images_per_run'] // 2} from one generation, but "
            f"retraining.population is {s['population']}: raise the population or lower it"
        )


def _check_networks(config: Mapping[str, Any]) -> None:
    datasets = config["datasets"]
    for dataset, nets in config["networks"].items():
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
            if settings["pretrained"] and (dataset, net) != (IMAGENET, "alexnet"):
                raise EvofoolError(
                    f"config key networks.{dataset}.{net}.pretrained: only {IMAGENET}/alexnet "
                    "has pretrained weights (set imagenet.enabled instead); train this network"
                )


def _check_imagenet_paths(config: Mapping[str, Any], base: Path) -> None:
    """The imagenet section's folder, synsets file and weights file exist where it says."""
    s = config["imagenet"]
    if not s["enabled"]:
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
    for name, ds in config["datasets"].items():
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
    settings = config[section]
    seed = settings["model_seed"]
    networks = config["networks"]
    for key in settings["models"]:
        dataset, net = key.split("/")
        if net not in networks.get(dataset, {}):
            known = ", ".join(f"{d}/{n}" for d, ns in networks.items() for n in ns)
            raise EvofoolError(
                f"config key {section}.models: {key!r} is not a trained network; "
                f"choose from: {known or 'none (add one under networks)'}"
            )
        seeds = networks[dataset][net]["seeds"]
        if seed in seeds:
            continue
        if networks[dataset][net]["pretrained"]:
            raise EvofoolError(
                f"config key {section}.model_seed: {key} has one set of pretrained weights, "
                f"seed {PRETRAINED_SEED}, and the imagenet switch adds it to {section}.models; "
                f"set {section}.model_seed: {PRETRAINED_SEED}, or imagenet.{section}.enabled: "
                "false to attack only the trained networks with this seed"
            )
        raise EvofoolError(
            f"config key {section}.model_seed: {key} is trained with seeds {seeds}, not {seed}; "
            f"add {seed} to networks.{dataset}.{net}.seeds or choose one of those"
        )
