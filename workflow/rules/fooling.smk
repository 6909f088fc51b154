# Fooling images (FOOL): MAP-Elites runs, their tables, transfer and gradient ascent.


rule evolve_fooling_images:
    input:
        model=targets.MODEL,
        data=targets.DATASET,
    output:
        run=targets.FOOL_RUN,
    log:
        "logs/evolve_fooling_images/dataset={dataset}/net={net}/seed={seed}/encoding={encoding}/insertion={insertion}/run={run}.log",
    benchmark:
        "results/benchmarks/evolve_fooling_images/dataset={dataset}/net={net}/seed={seed}/encoding={encoding}/insertion={insertion}/run={run}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("evolve"),
    params:
        settings=lambda wc: targets.fooling_job_settings(
            config, wc.dataset, wc.encoding
        ),
        seed=config["seed"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
        checkpoint=targets.FOOL_CHECKPOINT,
    script:
        "../../scripts/evolve_fooling_images.py"


rule aggregate_fooling:
    input:
        runs=lambda wc: targets.fool_runs(config, wc),
    output:
        elites=targets.FOOL_ELITES,
        history=targets.FOOL_HISTORY,
    log:
        "logs/aggregate_fooling/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/aggregate_fooling/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/aggregate_fooling.py"


rule transfer_fooling_images:
    input:
        runs=lambda wc: targets.fool_runs(config, wc),
        others=lambda wc: [
            targets.MODEL.format(**p) for p in targets.transfer_partners(config, wc)
        ],
    output:
        rows=targets.FOOL_TRANSFER_ROWS,
    log:
        "logs/transfer_fooling_images/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/transfer_fooling_images/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("evolve"),
    params:
        partners=lambda wc: targets.transfer_partners(config, wc),
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
    script:
        "../../scripts/transfer_fooling_images.py"


rule ascend_gradient:
    input:
        model=targets.MODEL,
        data=targets.DATASET,
    output:
        result=targets.FOOL_ASCENT,
    log:
        "logs/ascend_gradient/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/ascend_gradient/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("evolve"),
    params:
        settings=lambda wc: plan.experiment_settings(config, "fooling", wc.dataset)[
            "gradient_ascent"
        ],
        seed=config["seed"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
    script:
        "../../scripts/ascend_gradient.py"


rule tabulate_fooling:
    input:
        elites=[targets.FOOL_ELITES.format(**m) for m in FOOL_MODELS],
    output:
        summary=report(
            targets.FOOL_SUMMARY_TABLE,
            caption="../../reports/fooling_summary.rst",
            category="Fooling images",
            subcategory="Tables",
        ),
        tests=report(
            targets.FOOL_TESTS_TABLE,
            caption="../../reports/fooling_tests.rst",
            category="Fooling images",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_fooling.log",
    benchmark:
        "results/benchmarks/tabulate_fooling.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=fooling_budgets,
    script:
        "../../scripts/tabulate_fooling.py"


rule tabulate_transfer:
    input:
        rows=[
            targets.FOOL_TRANSFER_ROWS.format(**m)
            for m in targets.fool_transfer_models(config)
        ],
    output:
        table=report(
            targets.FOOL_TRANSFER_TABLE,
            caption="../../reports/fooling_transfer.rst",
            category="Fooling images",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_transfer.log",
    benchmark:
        "results/benchmarks/tabulate_transfer.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=fooling_budgets,
    script:
        "../../scripts/tabulate_transfer.py"


rule tabulate_gradient_ascent:
    input:
        results=[
            targets.FOOL_ASCENT.format(**m) for m in targets.fool_ascent_models(config)
        ],
    output:
        table=report(
            targets.FOOL_ASCENT_TABLE,
            caption="../../reports/fooling_ascent_table.rst",
            category="Fooling images",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_gradient_ascent.log",
    benchmark:
        "results/benchmarks/tabulate_gradient_ascent.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=ascent_budgets,
    script:
        "../../scripts/tabulate_gradient_ascent.py"
