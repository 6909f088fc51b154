"""The study on a real single-node SLURM cluster (loopback), against a local run of its config.

Needs root; installs Debian's munge and SLURM packages when missing (see conftest.py and
cluster.py). Status polling, not compute, sets the runtime, so the DAG is as shallow as the
workflow allows: dataset -> network -> (fooling runs | attack images) -> attack shard on SLURM,
the aggregation, tables and one figure on the submit host.
"""

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from snakemake_runs import SNAKEMAKE

pytestmark = pytest.mark.slurm

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CONFIG = HERE / "tiny.yaml"
SLURM_PROFILE = REPO / "profiles" / "slurm" / "config.yaml"
CI_PROFILE = HERE / "ci-profile.yaml"
TIMEOUT = 600  # seconds; the SLURM run is killed (timeout -s KILL) after this

# What the test builds: both attack chains and one figure, not the network table (that would
# also train config.yaml's allconv, one more job in the queue).
TARGETS = [
    "results/one_pixel/tables/success.csv",
    "results/fooling/tables/summary.csv",
    "results/fooling/figures/dataset=mnist/net=lenet/seed=0/progress.png",
]
# The rules of those targets' jobs, by where they must run.
ON_SLURM = {
    "prepare_dataset",
    "train_model",
    "select_attack_images",
    "attack_one_pixel",
    "evolve_fooling_images",
}
LOCAL_HERE = {
    "aggregate_attacks",
    "tabulate_one_pixel",
    "aggregate_fooling",
    "tabulate_fooling",
    "render_figure_progress",
}
# Rules that train or query a network: SLURM jobs with --gpus=<gpus_per_job>.
GPU_RULES = {
    "train_model",
    "select_attack_images",
    "attack_one_pixel",
    "evolve_fooling_images",
    "transfer_fooling_images",
    "ascend_gradient",
}
# Rules that neither train nor query a network: they run on the submit host (localrules).
LOCAL_RULES = {"all", "summarize_networks", "aggregate_attacks", "aggregate_fooling"}


def is_local_rule(rule):
    return rule in LOCAL_RULES or rule.startswith(("tabulate_", "render_figure_"))


def snakemake_cmd(workdir, *args):
    return [
        *SNAKEMAKE,
        "--directory",
        str(workdir),
        "--configfile",
        str(CONFIG),
        *args,
        *TARGETS,
    ]


SUBMITTED = re.compile(r"Job (\S+) has been submitted with SLURM jobid (\d+) \(log: (.+)\)\.$")


def parse_log(text):
    """Jobs (id -> rule, local?, group), SLURM submissions and sbatch calls of a verbose log."""
    jobs, submitted, sbatch = {}, {}, []
    rule = group = None
    for line in text.splitlines():
        if m := re.match(r"^.*Group job (\S+) \(jobs in lexicogr\. order\):$", line):
            group = m.group(1)
        elif m := re.match(r"^(\s*)(local)?rule (\w+):$", line):
            rule = (m.group(3), bool(m.group(2)), group if m.group(1) else None)
            if not m.group(1):
                group = None
        elif (m := re.match(r"^\s+jobid: (\d+)$", line)) and rule:
            jobs[m.group(1)] = rule
            rule = None
        elif m := SUBMITTED.search(line):
            submitted[m.group(1)] = (m.group(2), Path(m.group(3)))
        elif line.startswith("sbatch call: "):
            sbatch.append(line.split(" --wrap=")[0])
    return jobs, submitted, sbatch


def daemon_log_tail(cluster, name="slurmctld"):
    log = cluster.log(name)
    return "\n".join(log.read_text().splitlines()[-15:]) if log.exists() else "(no log)"


def comparable_results(root):
    """Every result file's bytes, except timings (benchmarks, training seconds)."""
    out = {}
    for path in sorted((root / "results").rglob("*")):
        rel = path.relative_to(root).as_posix()
        if not path.is_file() or rel.startswith("results/benchmarks/"):
            continue
        if rel.startswith("results/models/"):
            # model.pt and metrics.json record training time; history.csv has a seconds column
            if path.name == "history.csv":
                out[rel] = pd.read_csv(path).drop(columns="seconds").to_csv(index=False)
            continue
        out[rel] = path.read_bytes()
    return out


def run_here_and_on_slurm(cluster, tmp_path, *config):
    """The test's study on ``cluster`` and, niced alongside, on this machine; their two
    directories and the SLURM run's verbose log. ``config``: ``--config`` items for both."""
    extra = ("--config", *config) if config else ()
    # The shipped profile with the test cluster's settings over it (top-level keys replace).
    profile = yaml.safe_load(SLURM_PROFILE.read_text())
    assert profile["executor"] == "slurm" and "gpu" not in profile.get("resources", {})
    profile.update(yaml.safe_load(CI_PROFILE.read_text()))
    profile_file = tmp_path / "profile.yaml"
    profile_file.write_text(yaml.safe_dump(profile))

    # The local reference run goes alongside, niced: the SLURM run mostly waits on status polls,
    # and its jobs (on this same machine) come first when they do run.
    local_dir, slurm_dir = tmp_path / "local", tmp_path / "slurm"
    local_log = (tmp_path / "local.log").open("w")
    t0 = time.monotonic()
    local_cmd = snakemake_cmd(local_dir, "--cores", "2", "--workflow-profile", "none", *extra)
    local = subprocess.Popen(
        ["nice", "-n", "19", *local_cmd],
        stdout=local_log,
        stderr=subprocess.STDOUT,
        env=cluster.env,
        cwd=REPO,
        start_new_session=True,  # its own process group: stopped with its jobs on failure
    )
    try:
        cmd = snakemake_cmd(
            slurm_dir,
            "--executor",
            "slurm",
            "--workflow-profile",
            str(profile_file),
            "--verbose",
            *extra,
        )
        proc = subprocess.run(
            ["timeout", "-s", "KILL", str(TIMEOUT), *cmd],
            capture_output=True,
            text=True,
            env=cluster.env,
            cwd=REPO,
            timeout=TIMEOUT + 60,
        )
        slurm_seconds = time.monotonic() - t0
        log = proc.stdout + proc.stderr
        (tmp_path / "slurm.log").write_text(log)
        killed = f" (killed at the {TIMEOUT} s limit)" if proc.returncode in (-9, 137) else ""
        assert proc.returncode == 0, (
            f"SLURM run failed with {proc.returncode}{killed}, "
            f"log {tmp_path / 'slurm.log'}:\n{log[-4000:]}\n"
            f"slurmctld log:\n{daemon_log_tail(cluster)}"
        )
        local.wait(timeout=TIMEOUT)
    finally:
        if local.poll() is None:
            os.killpg(local.pid, signal.SIGKILL)
            local.wait()
        local_log.close()
    assert local.returncode == 0, (tmp_path / "local.log").read_text()[-4000:]
    print(f"SLURM run {slurm_seconds:.0f} s, both runs {time.monotonic() - t0:.0f} s")
    return local_dir, slurm_dir, log


def test_study_on_slurm_matches_a_local_run(slurm_cluster, tmp_path):
    local_dir, slurm_dir, log = run_here_and_on_slurm(slurm_cluster, tmp_path)

    jobs, submitted, sbatch = parse_log(log)
    run_id = re.search(r"SLURM run ID: (\S+)", log).group(1)

    # Every job is accounted for: aggregation, tables and figures here, every other job on SLURM.
    local_rules = {rule for rule, local, _ in jobs.values() if local}
    remote = {jid: (rule, group) for jid, (rule, local, group) in jobs.items() if not local}
    assert local_rules == LOCAL_HERE and all(is_local_rule(r) for r in local_rules)
    assert {r for r, _ in remote.values()} == ON_SLURM
    alone = {jid for jid, (_, group) in remote.items() if group is None}
    groups = {group for _, group in remote.values() if group is not None}
    assert groups == {"fooling"}, "the fooling runs should share one SLURM job (job group)"
    assert alone <= set(submitted), f"not submitted to SLURM: {alone - set(submitted)}"
    assert len(submitted) == len(alone) + len(groups), submitted

    # SLURM's side: one finished job per submission, under this run's name.
    squeue = slurm_cluster.run("squeue", "--states=all", "-h", "--name", run_id, "-o", "%i|%T|%k")
    records = dict(line.split("|", 1) for line in squeue.stdout.splitlines())
    slurm_ids = {sid for sid, _ in submitted.values()}
    assert set(records) == slurm_ids, (records, submitted)
    assert {state for state, _ in (r.split("|") for r in records.values())} == {"COMPLETED"}

    # GPU rules asked for --gpus=1 (gpus_per_job) and SLURM granted the node's fake GPU.
    assert len(sbatch) == len(submitted)
    for call in sbatch:
        comment = re.search(r"--comment (\S+)", call).group(1)
        assert ("--gpus=1" in call) == any(rule in comment for rule in GPU_RULES), call
    for sid in slurm_ids:
        show = slurm_cluster.run("scontrol", "show", "job", "-o", sid).stdout
        comment = re.search(r"Comment=(\S+)", show).group(1)
        assert ("TresPerJob=gres:gpu:1" in show) == ("prepare_dataset" not in comment), show

    # Each SLURM job left its log (kept by slurm-keep-successful-logs) under .snakemake/, in
    # which the job's own Snakemake ran its rule(s).
    for jid, (sid, logfile) in submitted.items():
        assert logfile.is_relative_to(slurm_dir / ".snakemake" / "slurm_logs")
        assert logfile.name == f"{sid}.log", logfile
        rule = jobs[jid][0] if jid in jobs else "evolve_fooling_images"  # else: the group
        assert f"rule {rule}:" in logfile.read_text(), logfile

    # portable mode reached the node's jobs before torch chose its kernels
    metrics = sorted((slurm_dir / "results" / "models").rglob("metrics.json"))
    assert metrics and {json.loads(m.read_text())["reproducibility"] for m in metrics} == {
        "portable"
    }

    # The same results as on this machine, byte for byte (timings aside).
    here, there = comparable_results(local_dir), comparable_results(slurm_dir)
    assert sorted(here) == sorted(there)
    assert [k for k in here if here[k] != there[k]] == []
    assert any(k.endswith("attacks.csv") for k in here) and any(
        k.endswith("elites.csv") for k in here
    )


@pytest.mark.cuda
def test_study_on_slurm_with_the_gpu_matches_a_local_cuda_run(slurm_cluster, tmp_path):
    """device: cuda: each network job gets the node's GPU through --gpus=1 and gres."""
    assert slurm_cluster.gpu_files, "the cluster's node should offer this machine's GPUs"
    local_dir, slurm_dir, log = run_here_and_on_slurm(slurm_cluster, tmp_path, "device=cuda")
    _, submitted, sbatch = parse_log(log)
    assert submitted and all("--gpus=1" in call for call in sbatch if "prepare_dataset" not in call)
    for root in (local_dir, slurm_dir):
        metrics = sorted((root / "results" / "models").rglob("metrics.json"))
        assert metrics and {json.loads(m.read_text())["device"] for m in metrics} == {"cuda"}
    # The same GPU and deterministic kernels: the same bytes through SLURM as here.
    here, there = comparable_results(local_dir), comparable_results(slurm_dir)
    assert sorted(here) == sorted(there)
    assert [k for k in here if here[k] != there[k]] == []
