# The one-pixel attack (OPA): choose images, attack them in shards, gather one table each.


rule select_attack_images:
    input:
        model=targets.MODEL,
        data=targets.DATASET,
    output:
        images=targets.OPA_IMAGES,
    log:
        "logs/select_attack_images/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/select_attack_images/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("attack"),
    params:
        n_images=lambda wc: plan.one_pixel_images_needed(
            plan.experiment_settings(config, "one_pixel", wc.dataset)
        ),
        seed=config["seed"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
    script:
        "../../scripts/select_attack_images.py"


rule attack_one_pixel:
    input:
        model=targets.MODEL,
        images=targets.OPA_IMAGES,
    output:
        shard=targets.OPA_SHARD,
    log:
        "logs/attack_one_pixel/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}/shard={shard}.log",
    benchmark:
        "results/benchmarks/attack_one_pixel/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}/shard={shard}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("attack"),
    params:
        settings=lambda wc: targets.one_pixel_job_settings(
            config, wc.dataset, wc.protocol
        ),
        seed=config["seed"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
    script:
        "../../scripts/attack_one_pixel.py"


rule aggregate_attacks:
    input:
        shards=opa_shards,
    output:
        table=targets.OPA_ATTACKS,
    log:
        "logs/aggregate_attacks/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}.log",
    benchmark:
        "results/benchmarks/aggregate_attacks/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/aggregate_attacks.py"


rule tabulate_one_pixel:
    input:
        attacks=targets.opa_attack_tables(config, ("targeted", "nontargeted")),
        images=[
            targets.OPA_IMAGES.format(**m)
            for m in targets.attacked_models(config, "one_pixel")
        ],
    output:
        table=report(
            targets.OPA_SUCCESS_TABLE,
            caption="../../reports/one_pixel_success.rst",
            category="One-pixel attack",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_one_pixel.log",
    benchmark:
        "results/benchmarks/tabulate_one_pixel.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/tabulate_one_pixel.py"


rule tabulate_de_vs_random:
    input:
        attacks=targets.opa_attack_tables(config, ("targeted", "nontargeted", "random")),
    output:
        table=report(
            targets.OPA_RANDOM_TABLE,
            caption="../../reports/one_pixel_random.rst",
            category="One-pixel attack",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_de_vs_random.log",
    benchmark:
        "results/benchmarks/tabulate_de_vs_random.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/tabulate_de_vs_random.py"


rule tabulate_search_methods:
    input:
        attacks=targets.opa_attack_tables(config, plan.SEARCH_PROTOCOLS),
    output:
        table=report(
            targets.OPA_METHODS_TABLE,
            caption="../../reports/one_pixel_search_methods.rst",
            category="One-pixel search methods",
            subcategory="Tables",
        ),
        ceiling=report(
            targets.OPA_CEILING_TABLE,
            caption="../../reports/one_pixel_ceiling.rst",
            category="One-pixel search methods",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_search_methods.log",
    benchmark:
        "results/benchmarks/tabulate_search_methods.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/tabulate_search_methods.py"
