"""The planning layer: imports no torch, numba or scipy; one source for every name it holds."""

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from evofool import plan, targets
from evofool.attacks import EVALUATIONS, OPTIMIZERS, AttackSettings
from evofool.config import resolve_config
from evofool.evolution import ENCODING_CLASSES, INSERTION_RULES

REPO = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())


def _imports_of(code):
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO
    )
    return set(proc.stdout.split())


def test_what_the_snakefile_imports_loads_no_torch_numba_or_scipy():
    # The imports of workflow/rules/common.smk, in a fresh interpreter.
    code = (
        "import sys\n"
        "from evofool.config import check_local_paths, resolve_config\n"
        "from evofool.errors import EvofoolError\n"
        "from evofool import plan, targets\n"
        "print(' '.join(m for m in ('torch', 'numba', 'scipy', 'torchvision') "
        "if m in sys.modules))\n"
    )
    assert _imports_of(code) == set()


def test_the_rules_import_only_the_planning_layer():
    imported = set()
    for path in [REPO / "Snakefile", *sorted((REPO / "workflow" / "rules").glob("*.smk"))]:
        for line in path.read_text().splitlines():
            if line.startswith(("from evofool", "import evofool")):
                imported.add(line.split()[1])
    assert imported <= {"evofool", "evofool.config", "evofool.errors"}, imported


@pytest.mark.parametrize(
    "script",
    [
        "tabulate_de_vs_random",
        "tabulate_search_methods",
        "render_figure_search_methods",
        "tabulate_fooling",
        "tabulate_transfer",
        "render_figure_progress",
    ],
)
def test_table_and_figure_scripts_that_read_only_csv_load_no_torch(script):
    # Import the script's modules as Snakemake would, without running its main().
    source = (REPO / "scripts" / f"{script}.py").read_text()
    imports = "\n".join(
        line for line in source.splitlines() if line.startswith(("import ", "from "))
    )
    imports = imports.replace("from evofool.workflow import run_rule", "")
    assert "torch" not in _imports_of(f"import sys\n{imports}\nprint(' '.join(sys.modules))")


def test_schema_names_are_the_code_names():
    definitions = SCHEMA["definitions"]
    assert tuple(definitions["architecture"]["enum"]) == plan.ARCHITECTURES
    assert tuple(definitions["protocol"]["enum"]) == plan.PROTOCOLS
    assert tuple(definitions["encoding"]["enum"]) == plan.ENCODINGS
    assert tuple(definitions["insertion"]["enum"]) == plan.INSERTIONS
    assert tuple(ENCODING_CLASSES) == plan.ENCODINGS
    assert INSERTION_RULES == plan.INSERTIONS
    assert OPTIMIZERS == ("de", "random", "corners", "sparse_rs")
    assert set(plan.PROTOCOL_METHODS) == set(plan.PROTOCOLS)
    assert set(plan.PROTOCOL_METHODS.values()) == set(OPTIMIZERS)
    assert set(plan.SEARCH_PROTOCOLS) <= set(plan.PROTOCOLS)
    budgets = SCHEMA["properties"]["one_pixel"]["properties"]["budgets"]["properties"]
    assert set(budgets) == set(OPTIMIZERS) - {"de"}
    assert tuple(definitions["evaluation"]["enum"]) == EVALUATIONS


def test_encoding_settings_are_what_the_encodings_take():
    taken = {k for cls in ENCODING_CLASSES.values() for k in cls.SETTING_KEYS}
    assert taken == set(plan.ENCODING_SETTINGS)
    fooling = SCHEMA["properties"]["fooling"]["properties"]
    assert set(plan.ENCODING_SETTINGS) <= set(fooling)


def test_the_engine_defaults_are_the_schema_defaults():
    section = SCHEMA["properties"]["one_pixel"]["properties"]
    engine = AttackSettings(targeted=False)
    keys = ("popsize", "generations", "mutation", "forward_batch", "fitness_dtype", "evaluation")
    for key in keys:
        assert section[key]["default"] == getattr(engine, key), key


def test_shards_cover_every_image_once():
    settings = {"targeted_images": 7, "nontargeted_images": 12, "chunk_size": 5}
    assert plan.one_pixel_shards(settings, "targeted") == 2
    assert plan.one_pixel_shards(settings, "nontargeted") == 3
    assert plan.one_pixel_shards(settings, "random") == 3
    settings["protocols"] = ["targeted"]
    assert plan.one_pixel_images_needed(settings) == 7
    settings["protocols"] = ["targeted", "random"]
    assert plan.one_pixel_images_needed(settings) == 12
    for protocol in ("corners", "sparse_rs"):
        assert plan.one_pixel_shards(settings, protocol) == 3


def test_each_protocol_job_depends_on_its_own_budget_only():
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    config["one_pixel"]["budgets"] = {"sparse_rs": 5000}
    config = resolve_config(config, REPO / "workflow" / "schemas" / "config.schema.yaml")
    jobs = {p: targets.one_pixel_job_settings(config, "mnist", p) for p in plan.PROTOCOLS}
    assert jobs["sparse_rs"]["budget"] == 5000
    assert all(jobs[p]["budget"] is None for p in plan.PROTOCOLS if p != "sparse_rs")
    assert all("budgets" not in job for job in jobs.values())
    same = {k: v for k, v in jobs["sparse_rs"].items() if k != "budget"}
    assert all({k: v for k, v in jobs[p].items() if k != "budget"} == same for p in jobs)


def test_fooling_and_retraining_seeds_never_meet():
    fooling = {
        plan.fooling_run_seed(0, e, i, r)
        for e in plan.ENCODINGS
        for i in plan.INSERTIONS
        for r in range(20)
    }
    retraining = {
        plan.retraining_run_seed(0, round_, p, r)
        for round_ in range(1, 4)
        for p in plan.PURPOSES
        for r in range(20)
    }
    assert len(fooling) == 80
    assert len(retraining) == 120
    assert not fooling & retraining


def test_seeds_are_those_of_earlier_releases():
    # The seed of a run fixes its results: changing the derivation would change every table.
    assert plan.fooling_run_seed(0, "direct", "all", 0) == 2968811710
    assert plan.retraining_run_seed(0, 1, "source", 0) == 2910553263


def test_generations_and_budget_text():
    assert plan.generations_text(200) == "200"
    assert plan.generations_text({"direct": 20000, "cppn": 5000}) == "5000 (cppn) / 20000 (direct)"
    settings = {"runs": 4, "generations": 200, "population": 200, "mutation_rate": 0.1}
    assert plan.fooling_budget(settings) == (
        "4 runs per setting, 200 generations of 200 children, direct mutation rate 0.1"
    )
