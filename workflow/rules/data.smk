rule prepare_dataset:
    output:
        data=targets.DATASET,
        summary=targets.DATASET_SUMMARY,
    log:
        "logs/prepare_dataset/dataset={dataset}.log",
    benchmark:
        "results/benchmarks/prepare_dataset/dataset={dataset}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    resources:
        mem_mb=targets.MEM_MB["data"],
        runtime=targets.RUNTIME["data"],
    params:
        settings=lambda wc: config["datasets"][wc.dataset],
    script:
        "../../scripts/prepare_dataset.py"
