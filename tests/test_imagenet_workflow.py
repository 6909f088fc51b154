"""The ImageNet switch end to end on a randomly initialised AlexNet and images the test writes."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
import yaml
from matplotlib import image
from PIL import Image
from snakemake_runs import snakemake

from evofool import pretrained
from evofool.evolution import MapElites
from evofool.io import load_artifact
from evofool.models import load_model

REPO = Path(__file__).resolve().parents[1]
TINY = REPO / "tests" / "configs" / "tiny.yaml"
N_IMAGES = 4


def _imagenet_config(root: Path, sha256: str) -> Path:
    """Only the ImageNet experiments (the tiny MNIST networks are trained, never attacked)."""
    cfg = {
        "one_pixel": {"models": [], "popsize": 4, "generations": 1, "examples": 2},
        "fooling": {"models": []},
        "retraining": {"enabled": False},
        "imagenet": {
            "enabled": True,
            "images": "ilsvrc",
            "weights": "alexnet.pth",
            "weights_sha256": sha256,
            "max_images": None,
            "one_pixel": {"nontargeted_images": 3, "chunk_size": 2},
            "fooling": {
                "runs": 1,
                "generations": {"direct": 2, "cppn": 1},
                "population": 4,
                "checkpoint_every": 1,
                "gradient_ascent": {"enabled": False},
            },
        },
    }
    path = root / "imagenet.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _write_images(root: Path, weights: Path) -> list[int]:
    """Random images of several sizes, each filed under the class the random AlexNet predicts
    for its 227x227 nearest-resized copy (so the attack has correctly classified images)."""
    model = pretrained.pretrained_alexnet(weights)
    rng = np.random.default_rng(0)
    labels = []
    for i in range(N_IMAGES):
        arr = rng.integers(0, 256, size=(240 + 13 * i, 300 - 17 * i, 3), dtype=np.uint8)
        im = Image.fromarray(arr)
        small = np.array(im.resize((227, 227), Image.NEAREST))
        x = torch.from_numpy(small).permute(2, 0, 1)[None].float() / 255
        with torch.no_grad():
            label = int(model(x).argmax())
        (root / "ilsvrc" / str(label)).mkdir(parents=True, exist_ok=True)
        im.save(root / "ilsvrc" / str(label) / f"ILSVRC2012_val_{i:08d}.png")
        labels.append(label)
    return labels


@pytest.fixture(scope="module")
def imagenet_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet")
    torch.manual_seed(0)
    torch.save(torchvision.models.alexnet(weights=None).state_dict(), root / "alexnet.pth")
    sha = pretrained.sha256_of(root / "alexnet.pth")
    labels = _write_images(root, root / "alexnet.pth")
    cfg = _imagenet_config(root, sha)
    args = ("--directory", root, "--configfile", TINY, cfg)
    snakemake("--cores", 2, *args)
    snakemake(*args, "--report", root / "report.html")
    return root, labels, args


@pytest.mark.workflow
def test_imagenet_dataset_and_model_are_the_images_and_the_named_weights(imagenet_run):
    root, labels, _ = imagenet_run
    data = load_artifact(root / "results/data/dataset=imagenet/dataset.pt")
    assert data["x_test"].shape == (N_IMAGES, 3, 227, 227) and len(data["classes"]) == 1000
    assert sorted(data["y_test"].tolist()) == sorted(labels)
    model = load_model(root / "results/models/dataset=imagenet/net=alexnet/seed=0/model.pt")
    reference = pretrained.pretrained_alexnet(root / "alexnet.pth")
    x = data["x_test"].float() / 255
    with torch.no_grad():
        torch.testing.assert_close(model(x), reference(x), atol=1e-4, rtol=1e-4)
        assert torch.equal(model(x).argmax(1), data["y_test"])  # labelled by its predictions
    networks = pd.read_csv(root / "results/tables/networks.csv")
    row = networks[networks["dataset"] == "imagenet"].iloc[0]
    assert row["net"] == "alexnet" and row["test_accuracy"] == 1.0


@pytest.mark.workflow
def test_imagenet_one_pixel_attack_runs_opas_setting(imagenet_run):
    root = imagenet_run[0]
    attacks = pd.read_csv(
        root / "results/one_pixel/dataset=imagenet/net=alexnet/seed=0/pixels=1/"
        "protocol=nontargeted/attacks.csv"
    )
    assert len(attacks) == 3 and set(attacks["pixels"]) == {1}
    assert set(attacks["popsize"]) == {4} and set(attacks["generations"]) == {1}
    assert (attacks["queries"] <= 4 * 2).all()
    assert not list((root / "results/one_pixel").rglob("*dataset=imagenet*/*targeted/*"))
    success = pd.read_csv(root / "results/one_pixel/tables/success.csv")
    assert set(success["dataset"]) == {"imagenet"}


@pytest.mark.workflow
def test_imagenet_fooling_images_are_256_hsv_scored_over_ten_crops(imagenet_run):
    root = imagenet_run[0]
    base = root / "results/fooling/dataset=imagenet/net=alexnet/seed=0"
    model = load_model(root / "results/models/dataset=imagenet/net=alexnet/seed=0/model.pt")
    for encoding, generations in (("direct", 2), ("cppn", 1)):
        me = MapElites.load(base / f"encoding={encoding}/insertion=all/run=0/run.pt")
        assert me.generation == generations and me.batch_size == 4
        assert len(me.archive.filled_classes) == 1000  # the first child beats every empty cell
        filled = me.archive.filled_classes[::199]  # 6 classes: 10 crops x 6 AlexNet passes
        images = me.archive.images[filled]
        assert images.shape[1:] == (3, 256, 256)
        views = []  # the four corners, the centre, and their mirror images, cut by hand
        for r, c in ((0, 0), (0, 29), (29, 0), (29, 29), (14, 14)):
            views.append(images[..., r : r + 227, c : c + 227])
        views += [v.flip(-1) for v in views]
        with torch.no_grad():
            mean_p = torch.stack([torch.softmax(model(v), 1) for v in views]).mean(0)
        expected = mean_p[torch.arange(len(filled)), torch.tensor(filled)]
        torch.testing.assert_close(me.archive.confidences[filled], expected, atol=1e-5, rtol=1e-4)
    elites = pd.read_csv(base / "elites.csv")
    assert elites["class"].nunique() == 1000


@pytest.mark.workflow
def test_imagenet_figures_report_and_paper_rows(imagenet_run):
    root = imagenet_run[0]
    figures = sorted((root / "results").rglob("figures/dataset=imagenet/**/*.png"))
    names = {p.name for p in figures}
    expected = {
        "examples.png",
        "fitness.png",
        "heatmap_nontargeted.png",
        "class_counts_nontargeted.png",
        "elites_direct_all.png",
        "elites_cppn_all.png",
        "class_confidence.png",
        "progress.png",
    }
    assert expected <= names
    for p in figures:
        pixels = image.imread(p)
        assert pixels.shape[0] < 4000 and pixels.shape[1] < 4000, p  # 1,000 classes cut down
        assert pixels[..., :3].std() > 0.01, p
    paper = pd.read_csv(root / "results/tables/paper_vs_ours.csv")
    rows = paper[paper["dataset"] == "imagenet"]
    ran = rows.dropna(subset=["ours"])
    assert set(ran["quantity"]) >= {"nontargeted2_rate", "fooling_median", "fooling_classes_at_99"}
    assert ran["our_setting"].str.contains("generations").any()
    assert rows[rows["quantity"].str.startswith("retraining")]["ours"].isna().all()
    report = (root / "report.html").read_text()
    assert "1 (cppn) / 2 (direct) generations of 4 children" in report
    assert "256x256 HSV images, each scored as the mean softmax over 10 crops" in report


@pytest.mark.workflow
def test_imagenet_second_run_has_nothing_to_do(imagenet_run):
    root, _, args = imagenet_run
    out = snakemake("-n", *args).stdout
    assert "Nothing to be done" in out or "nothing to be done" in out.lower()


@pytest.mark.workflow
def test_a_weights_file_with_another_digest_stops_the_import_with_one_line(imagenet_run, tmp_path):
    root, _, _ = imagenet_run
    cfg = yaml.safe_load((root / "imagenet.yaml").read_text())
    cfg["imagenet"]["weights_sha256"] = "0123abcd"
    (tmp_path / "ilsvrc").symlink_to(root / "ilsvrc")
    (tmp_path / "alexnet.pth").symlink_to(root / "alexnet.pth")
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(cfg))
    proc = snakemake(
        "results/models/dataset=imagenet/net=alexnet/seed=0/model.pt",
        "--cores",
        1,
        "--directory",
        tmp_path,
        "--configfile",
        TINY,
        tmp_path / "bad.yaml",
        check=False,
    )
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if "expected one starting with 0123abcd" in ln]
    assert lines and "imagenet.weights_sha256" in lines[0]
    assert "Traceback" not in proc.stderr


def test_imagenet_switch_without_its_folder_stops_the_dry_run_with_one_line(tmp_path):
    cfg = tmp_path / "on.yaml"
    cfg.write_text("imagenet:\n  enabled: true\n  images: ilsvrc/val\n")
    proc = snakemake("-n", "--directory", tmp_path, "--configfile", cfg, check=False)
    assert proc.returncode != 0
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("evofool:")]
    assert len(lines) == 1 and "imagenet.images" in lines[0] and "ilsvrc/val not found" in lines[0]
    assert "Traceback" not in proc.stderr


def test_paper_config_with_the_switch_on_plans_the_papers_imagenet_jobs(tmp_path):
    (tmp_path / "val" / "n01440764").mkdir(parents=True)
    on = tmp_path / "on.yaml"
    on.write_text("imagenet:\n  enabled: true\n  images: val\n")
    paper = REPO / "configs" / "paper.yaml"
    out = snakemake("-n", "--directory", tmp_path, "--configfile", paper, on).stdout
    jobs = [line for line in out.splitlines() if "dataset=imagenet" in line and "output:" in line]
    shards = [j for j in jobs if "/protocol=nontargeted/shards/" in j]
    runs = [j for j in jobs if "/run.pt" in j and "fooling/dataset=imagenet" in j]
    assert len(shards) == 7  # 105 images in shards of 15, 1 pixel, non-targeted only
    assert len(runs) == 10  # 5 runs x 2 encodings, all-classes insertion
    assert "resources/imagenet/alexnet-owt-7be5be79.pth" in out  # downloaded: weights is null
    assert not [j for j in jobs if "protocol=targeted" in j or "protocol=random" in j]
