# evofool: how easily evolutionary search fools image classifiers.
#
# results/
#   data/dataset={dataset}/dataset.pt          prepared images and labels (uint8, int64)
#   models/dataset={d}/net={net}/seed={s}/     model.pt, metrics.json, history.csv
#   tables/networks.csv                        test accuracy of every trained network
#   one_pixel/dataset={d}/net={net}/seed={s}/  images.pt (attacked images), and per
#     pixels={p}/protocol={protocol}/          shards/shard={i}.pt and attacks.csv
#   one_pixel/tables/                          success.csv (Tables IV/V/VIII), de_vs_random.csv
#   one_pixel/figures/...                      examples, heat-maps, class counts, fitness
#   fooling/dataset={d}/net={net}/seed={s}/    encoding={e}/insertion={i}/run={r}/run.pt,
#                                              elites.csv, history.csv, transfer.csv
#   fooling/tables/, fooling/figures/          summary, direct vs CPPN, transfer, ascent
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
include: "workflow/rules/one_pixel.smk"
include: "workflow/rules/fooling.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/retraining.smk"
include: "workflow/rules/report.smk"


# Rules that neither train nor query a network run on the submit host of a cluster (which
# also fetches the AlexNet weights: compute nodes often have no network).
localrules:
    all,
    download_pretrained_weights,
    summarize_networks,
    aggregate_attacks,
    tabulate_one_pixel,
    tabulate_de_vs_random,
    tabulate_search_methods,
    aggregate_fooling,
    tabulate_fooling,
    tabulate_transfer,
    tabulate_gradient_ascent,
    tabulate_retraining,
    render_figure_retraining,
    compare_with_papers,
    summarize_rule_benchmarks,
    digest_tables,
    render_figure_examples,
    render_figure_heatmap,
    render_figure_class_counts,
    render_figure_fitness,
    render_figure_reachable_targets,
    render_figure_search_methods,
    render_figure_elites,
    render_figure_class_confidence,
    render_figure_progress,
    render_figure_gradient_ascent,


rule all:
    default_target: True
    input:
        all_targets,
