# Retraining rounds (FOOL Sections 3.6-3.8, Fig 11): DNN_1 -> fooling images -> class n+1 ->
# DNN_2 -> ... Round r's files depend only on rounds 1..r, so more rounds reuse the earlier ones.


rule evolve_retraining_runs:
    input:
        model=lambda wc: targets.retraining_model(wc, int(wc.round)),
        data=lambda wc: targets.retraining_dataset(wc, int(wc.round)),
    output:
        runs=targets.RETRAIN_RUNS,
    log:
        "logs/evolve_retraining_runs/dataset={dataset}/net={net}/seed={seed}/round={round}/{purpose}/shard={shard}.log",
    benchmark:
        "results/benchmarks/evolve_retraining_runs/dataset={dataset}/net={net}/seed={seed}/round={round}/{purpose}/shard={shard}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("evolve"),
    params:
        settings=lambda wc: plan.round_settings(
            config["retraining"], int(wc.round), wc.purpose
        ),
        encoding=lambda wc: {k: config["fooling"][k] for k in plan.ENCODING_SETTINGS},
        checkpoint_every=config["fooling"]["checkpoint_every"],
        seed=config["seed"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
        checkpoint=targets.RETRAIN_RUNS_CHECKPOINT,
    script:
        "../../scripts/evolve_retraining_runs.py"


rule extend_retraining_dataset:
    input:
        data=lambda wc: targets.retraining_dataset(wc, previous_round(wc)),
        runs=retraining_runs("source", previous_round),
    output:
        data=targets.RETRAIN_DATASET,
    log:
        "logs/extend_retraining_dataset/dataset={dataset}/net={net}/seed={seed}/round={round}.log",
    benchmark:
        "results/benchmarks/extend_retraining_dataset/dataset={dataset}/net={net}/seed={seed}/round={round}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    resources:
        mem_mb=targets.MEM_MB["data"],
        runtime=targets.RUNTIME["data"],
    params:
        images=lambda wc: plan.round_images(config["retraining"], previous_round(wc)),
    script:
        "../../scripts/extend_retraining_dataset.py"


rule retrain_model:
    input:
        data=targets.RETRAIN_DATASET,
    output:
        model=targets.RETRAIN_MODEL,
        metrics=targets.RETRAIN_MODEL_METRICS,
        history=targets.RETRAIN_MODEL_HISTORY,
    log:
        "logs/retrain_model/dataset={dataset}/net={net}/seed={seed}/round={round}.log",
    benchmark:
        "results/benchmarks/retrain_model/dataset={dataset}/net={net}/seed={seed}/round={round}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("train"),
    params:
        settings=network_settings,
        oversample=config["retraining"]["oversample"],
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
        checkpoint=targets.RETRAIN_MODEL_CHECKPOINT,
    script:
        "../../scripts/train_model.py"


rule evaluate_retraining_round:
    input:
        model=lambda wc: targets.retraining_model(wc, int(wc.round)),
        data=lambda wc: targets.retraining_dataset(wc, int(wc.round)),
        runs=retraining_runs("eval", None),
        heldout=lambda wc: (
            retraining_runs("eval", previous_round)(wc) if int(wc.round) > 1 else []
        ),
    output:
        summary=targets.RETRAIN_ROUND,
        elites=targets.RETRAIN_ELITES,
    log:
        "logs/evaluate_retraining_round/dataset={dataset}/net={net}/seed={seed}/round={round}.log",
    benchmark:
        "results/benchmarks/evaluate_retraining_round/dataset={dataset}/net={net}/seed={seed}/round={round}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: config["threads_per_job"]
    resources:
        **job_resources("evolve"),
    params:
        device=config["device"],
        # another mode computes other bits: switching it reruns every network job
        reproducibility=config["reproducibility"],
    script:
        "../../scripts/evaluate_retraining_round.py"


rule tabulate_retraining:
    input:
        summaries=retraining_rounds(targets.RETRAIN_ROUND),
        elites=retraining_rounds(targets.RETRAIN_ELITES),
    output:
        rounds=report(
            targets.RETRAIN_ROUNDS_TABLE,
            caption="../../reports/retraining_rounds.rst",
            category="Retraining",
            subcategory="Tables",
        ),
        tests=report(
            targets.RETRAIN_TESTS_TABLE,
            caption="../../reports/retraining_tests.rst",
            category="Retraining",
            subcategory="Tables",
        ),
    log:
        "logs/tabulate_retraining.log",
    benchmark:
        "results/benchmarks/tabulate_retraining.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/tabulate_retraining.py"


rule render_figure_retraining:
    input:
        runs=lambda wc: [
            path
            for r in range(1, config["retraining"]["rounds"] + 1)
            for path in retraining_runs("eval", lambda _: r)(wc)
        ],
        elites=lambda wc: [
            targets.RETRAIN_ELITES.format(
                dataset=wc.dataset, net=wc.net, seed=wc.seed, round=r
            )
            for r in range(1, config["retraining"]["rounds"] + 1)
        ],
        data=targets.DATASET,
    output:
        figure=report(
            targets.RETRAIN_FIG,
            caption="../../reports/retraining_figure.rst",
            category="Retraining",
            subcategory="Figures",
        ),
    log:
        "logs/render_figure_retraining/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/render_figure_retraining/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        seed=config["seed"],
    script:
        "../../scripts/render_figure_retraining.py"
