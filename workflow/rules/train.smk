rule train_model:
    input:
        data=targets.DATASET,
    output:
        model=targets.MODEL,
        metrics=targets.MODEL_METRICS,
        history=targets.MODEL_HISTORY,
    log:
        "logs/train_model/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/train_model/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("train"),
    params:
        settings=network_settings,
        device=config["device"],
        checkpoint=targets.MODEL_CHECKPOINT,
    script:
        "../../scripts/train_model.py"


rule summarize_networks:
    input:
        metrics=targets.model_files(config, targets.MODEL_METRICS),
    output:
        table=report(
            targets.NETWORKS_TABLE,
            caption="../../reports/networks.rst",
            category="Networks",
        ),
    log:
        "logs/summarize_networks.log",
    benchmark:
        "results/benchmarks/summarize_networks.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/summarize_networks.py"
