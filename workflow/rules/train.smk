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
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
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


# torchvision's pretrained AlexNet for the ImageNet experiments (imagenet section).
ruleorder: import_pretrained_model > train_model


rule download_pretrained_weights:
    output:
        weights=targets.PRETRAINED_WEIGHTS,
    log:
        "logs/download_pretrained_weights.log",
    benchmark:
        "results/benchmarks/download_pretrained_weights.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    resources:
        mem_mb=targets.MEM_MB["data"],
        runtime=targets.RUNTIME["data"],
    params:
        sha256=config["imagenet"]["weights_sha256"],
    script:
        "../../scripts/download_pretrained_weights.py"


rule import_pretrained_model:
    input:
        data=targets.DATASET,
        weights=targets.pretrained_weights(config),
    output:
        model=targets.MODEL,
        metrics=targets.MODEL_METRICS,
    log:
        "logs/import_pretrained_model/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/import_pretrained_model/dataset={dataset}/net={net}/seed={seed}.tsv"
    wildcard_constraints:
        dataset=plan.IMAGENET,
        net="alexnet",
        seed="0",
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("attack"),
    params:
        sha256=config["imagenet"]["weights_sha256"],
        image_size=config["imagenet"]["image_size"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
    script:
        "../../scripts/import_pretrained_model.py"
