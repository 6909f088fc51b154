# evofool: how easily evolutionary search fools image classifiers.
#
# results/
#   data/dataset={dataset}/dataset.pt          prepared images and labels (uint8, int64)
#   models/dataset={d}/net={net}/seed={s}/     model.pt, metrics.json, history.csv
#   tables/networks.csv                        test accuracy of every trained network
# logs/{rule}/...                              one log per job
# results/benchmarks/{rule}/...                runtime and memory per job


import os

from snakemake.utils import min_version

min_version("9.0")


configfile: os.path.join(workflow.basedir, "config.yaml")


report: "reports/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"


rule all:
    default_target: True
    input:
        all_targets,
