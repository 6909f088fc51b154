"""What the study runs, without running it: names, job arithmetic, seeds and caption text.

The workflow is planned from this module, :mod:`evofool.config` and :mod:`evofool.targets`
alone. None of them imports torch, numba or scipy, so parsing the Snakefile (a dry run, a
report, every cluster job) stays fast. The modules that run the experiments take their names
and arithmetic from here.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

IMAGENET = "imagenet"  # the dataset the imagenet section's experiments run on

# Network architectures (evofool.models builds them).
ARCHITECTURES = ("lenet", "allconv", "nin", "vgg16", "alexnet")
PRETRAINED_SEED = 0  # the model seed of imagenet/alexnet, whose weights exist once
ILSVRC_CLASSES = 1000  # the classes of the ImageNet images and of the pretrained AlexNet

# One-pixel protocols (docs/method.md, "One-pixel attack"): ``targeted`` attacks every image
# towards each other class; ``nontargeted`` is the true non-targeted attack; ``random`` is
# random search at the same budget; ``corners`` exhaustive one-pixel search (CornerSearch for
# d > 1) and ``sparse_rs`` Sparse-RS, all three non-targeted on the non-targeted images.
PROTOCOLS = ("targeted", "nontargeted", "random", "corners", "sparse_rs")
# The search method of each protocol (evofool.attacks.SEARCH_METHODS names them).
PROTOCOL_METHODS = {
    "targeted": "de",
    "nontargeted": "de",
    "random": "random",
    "corners": "corners",
    "sparse_rs": "sparse_rs",
}
# The non-targeted protocols, one per search method: the methods table compares them.
SEARCH_PROTOCOLS = ("nontargeted", "random", "corners", "sparse_rs")

# Fooling images: genome encodings and the rules by which a child enters the archive.
ENCODINGS = ("direct", "cppn")
INSERTIONS = ("all", "top_class")
# The fooling-section keys the encodings are built from (each takes the ones it uses).
ENCODING_SETTINGS = ("color", "mutation_rate", "halving_period")

# Retraining: the extra class, and the two kinds of MAP-Elites runs of every round.
FOOLING_CLASS = "fooling"
PURPOSES = ("source", "eval")

# Second entry of every retraining run's seed key, after the study seed. A fooling run's key
# has an encoding index (0 or 1) in that place, so the two experiments never share a seed.
_RETRAINING_SEED_TAG = 7


def _derived_seed(key: list[int]) -> int:
    """A 32-bit seed from integers that identify one run (numpy's SeedSequence hashing)."""
    return int(np.random.SeedSequence(key).generate_state(1)[0])


def experiment_settings(config: Mapping[str, Any], section: str, dataset: str) -> dict[str, Any]:
    """The settings of ``section`` (one_pixel or fooling) for the networks of ``dataset``.

    The networks of the ImageNet switch run with the section's settings overridden by the
    ``imagenet`` section's own (the papers attacked ImageNet differently from CIFAR-10 and
    MNIST); every other dataset uses the section as it is.
    """
    settings = dict(config[section])
    imagenet = config["imagenet"]
    if dataset == IMAGENET and imagenet["enabled"]:
        settings.update({k: v for k, v in imagenet[section].items() if k != "enabled"})
    return settings


# --- one-pixel attack -----------------------------------------------------------------------


def one_pixel_budget(settings: Mapping[str, Any], protocol: str) -> int | None:
    """Queries per attack of a protocol's method: ``budgets[method]``, or None for its default.

    The DE protocols have the DE budget, ``popsize * (generations + 1)``.
    """
    return settings.get("budgets", {}).get(PROTOCOL_METHODS[protocol])


def one_pixel_images(settings: Mapping[str, Any], protocol: str) -> int:
    """Images a one-pixel protocol attacks."""
    return settings["targeted_images" if protocol == "targeted" else "nontargeted_images"]


def one_pixel_images_needed(settings: Mapping[str, Any]) -> int:
    """Images to select for the protocols ``settings`` runs (the most any of them attacks)."""
    return max(one_pixel_images(settings, p) for p in settings["protocols"])


def one_pixel_shards(settings: Mapping[str, Any], protocol: str) -> int:
    """Jobs of a one-pixel protocol: its images in chunks of ``chunk_size``."""
    return math.ceil(one_pixel_images(settings, protocol) / settings["chunk_size"])


# --- fooling images -------------------------------------------------------------------------


def fooling_run_seed(study_seed: int, encoding: str, insertion: str, run: int) -> int:
    """Seed of one fooling run, derived from the study seed and what identifies the run."""
    return _derived_seed([study_seed, ENCODINGS.index(encoding), INSERTIONS.index(insertion), run])


# --- retraining rounds ----------------------------------------------------------------------


def round_images(settings: Mapping[str, Any], round_: int) -> int:
    """Fooling images added to the training set from the source runs of round ``round_``."""
    return settings["first_round_images"] if round_ == 1 else settings["later_round_images"]


def round_runs(settings: Mapping[str, Any], round_: int, purpose: str) -> int:
    """Evolution runs of one round: enough source runs for its images, or the evaluation runs."""
    if purpose == "eval":
        return settings["eval_runs"]
    if purpose == "source":
        return math.ceil(round_images(settings, round_) / settings["images_per_run"])
    raise ValueError(f"purpose must be one of {PURPOSES}, got {purpose!r}")


def round_settings(settings: Mapping[str, Any], round_: int, purpose: str) -> dict[str, Any]:
    """The retraining settings that one round's runs of one purpose depend on, and no others.

    Raising ``rounds`` or changing another round's image count thus leaves their files alone.
    """
    keys = ["encoding", "images_per_run", "generations", "population", "runs_per_job"]
    if purpose == "eval":
        keys.append("eval_runs")
    else:
        keys.append("first_round_images" if round_ == 1 else "later_round_images")
    return {k: settings[k] for k in keys}


def round_shard_runs(settings: Mapping[str, Any], round_: int, purpose: str, shard: int) -> range:
    """Run indices of one job (``runs_per_job`` runs each, the last one possibly fewer)."""
    size = settings["runs_per_job"]
    return range(shard * size, min((shard + 1) * size, round_runs(settings, round_, purpose)))


def round_shards(settings: Mapping[str, Any], round_: int, purpose: str) -> int:
    """Jobs that the runs of one round and purpose are split into."""
    return math.ceil(round_runs(settings, round_, purpose) / settings["runs_per_job"])


def retraining_run_seed(study_seed: int, round_: int, purpose: str, run: int) -> int:
    """Seed of one retraining run (never equal to a fooling run's: see the seed tag)."""
    return _derived_seed([study_seed, _RETRAINING_SEED_TAG, round_, PURPOSES.index(purpose), run])


# --- caption text ---------------------------------------------------------------------------


def generations_text(generations: int | Mapping[str, int]) -> str:
    """``200``, or ``5000 (cppn) / 20000 (direct)`` when each encoding has its own."""
    if isinstance(generations, Mapping):
        return " / ".join(f"{v} ({k})" for k, v in sorted(generations.items()))
    return str(generations)


def fooling_budget(settings: Mapping[str, Any]) -> str:
    """The budget of a fooling experiment in words, for captions (``settings`` of one dataset)."""
    text = (
        f"{settings['runs']} runs per setting, {generations_text(settings['generations'])} "
        f"generations of {settings['population']} children, direct mutation rate "
        f"{settings['mutation_rate']}"
    )
    if settings.get("image_size"):
        size = settings["image_size"]
        text += (
            f", {size}x{size} {settings['color'].upper()} images, each scored as the mean "
            f"softmax over {settings['crops']} crops of the network's input"
        )
    return text


def images_attacked_text(one_pixel: Mapping[str, Any]) -> str:
    """``5 targeted / 20 non-targeted images``, naming only the protocols that run."""
    protocols = set(one_pixel["protocols"])
    parts = []
    if "targeted" in protocols:
        parts.append(f"{one_pixel['targeted_images']} targeted")
    if protocols & set(SEARCH_PROTOCOLS):
        parts.append(f"{one_pixel['nontargeted_images']} non-targeted")
    return " / ".join(parts) + " images"


def settings_in_words(config: Mapping[str, Any]) -> dict[str, str]:
    """Our budgets per experiment, in words, for the side-by-side table with the papers.

    Keys: ``dataset:<name>`` per dataset, ``one_pixel``, ``fooling`` and ``retraining``, and
    ``one_pixel:imagenet`` and ``fooling:imagenet`` when the ImageNet experiments run with
    their own settings.
    """
    out = budgets_in_words(config, config["one_pixel"], config["fooling"])
    if config["imagenet"]["enabled"]:
        imagenet = budgets_in_words(
            config,
            experiment_settings(config, "one_pixel", IMAGENET),
            experiment_settings(config, "fooling", IMAGENET),
        )
        out[f"one_pixel:{IMAGENET}"] = imagenet["one_pixel"]
        out[f"fooling:{IMAGENET}"] = imagenet["fooling"]
    return out


def budgets_in_words(
    config: Mapping[str, Any], one_pixel: Mapping[str, Any], fooling: Mapping[str, Any]
) -> dict[str, str]:
    """Datasets and the budgets of the three experiments in words, for the paper comparison.

    Args:
        config: the whole (validated) study config.
        one_pixel: the one-pixel settings to describe (the section, or ImageNet's).
        fooling: the fooling settings to describe (the section, or ImageNet's).
    """
    r = config["retraining"]
    datasets = {
        f"dataset:{name}": f"{name} from {d['source']}"
        + (f" ({d['train_size']} training images)" if d.get("train_size") else "")
        for name, d in config["datasets"].items()
    }
    return {
        **datasets,
        "one_pixel": (
            f"population {one_pixel['popsize']} x {one_pixel['generations']} generations, "
            f"{images_attacked_text(one_pixel)} (paper 400 x 100, 300 targeted / 500 "
            "non-targeted)"
        ),
        "fooling": (
            f"{fooling['runs']} runs x {generations_text(fooling['generations'])} generations x "
            f"{fooling['population']} children"
        ),
        "retraining": (
            f"{r['rounds']} rounds, {r['first_round_images']} then {r['later_round_images']} "
            f"images, {r['eval_runs']} runs per round"
        ),
    }
