# The report's summaries: the papers' numbers beside ours, and where the time went.


rule compare_with_papers:
    input:
        networks=present(targets.NETWORKS_TABLE),
        success=present(targets.OPA_SUCCESS_TABLE),
        de_vs_random=present(targets.OPA_RANDOM_TABLE),
        fooling_elites=[targets.FOOL_ELITES.format(**m) for m in FOOL_MODELS],
        retraining_elites=retraining_rounds(targets.RETRAIN_ELITES),
        ascent=present(targets.FOOL_ASCENT_TABLE),
    output:
        table=report(
            targets.PAPER_TABLE,
            caption="../../reports/paper_vs_ours.rst",
            category="Papers vs ours",
        ),
    log:
        "logs/compare_with_papers.log",
    benchmark:
        "results/benchmarks/compare_with_papers.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        settings=plan.settings_in_words(config),
    script:
        "../../scripts/compare_with_papers.py"


rule summarize_rule_benchmarks:
    input:
        STUDY_TARGETS,
    output:
        table=report(
            targets.RULES_TABLE,
            caption="../../reports/rule_benchmarks_table.rst",
            category="Performance",
        ),
        figure=report(
            targets.RULES_FIG,
            caption="../../reports/rule_benchmarks_figure.rst",
            category="Performance",
        ),
    log:
        "logs/summarize_rule_benchmarks.log",
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        directory="results/benchmarks",
    script:
        "../../scripts/summarize_rule_benchmarks.py"


rule digest_tables:
    input:
        targets.digested_tables(config),
    output:
        table=report(
            targets.DIGESTS_TABLE,
            caption="../../reports/digests.rst",
            category="Reproducibility",
        ),
    log:
        "logs/digest_tables.log",
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        mode=config["reproducibility"],
    script:
        "../../scripts/digest_tables.py"
