# Figures of the one-pixel attack (OPA Figs 1/9, 5/11, 6/7/12/13, 8/14/15, 10).


rule render_figure_examples:
    input:
        images=targets.OPA_IMAGES,
        attacks=expand(targets.OPA_ATTACKS, protocol="nontargeted", allow_missing=True),
    output:
        figure=report(
            targets.OPA_FIG_EXAMPLES,
            caption="../../reports/one_pixel_examples.rst",
            category="One-pixel attack",
            subcategory="{dataset}/{net}, {pixels} pixel(s)",
        ),
    log:
        "logs/render_figure_examples/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}.log",
    benchmark:
        "results/benchmarks/render_figure_examples/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        examples=lambda wc: plan.experiment_settings(config, "one_pixel", wc.dataset)[
            "examples"
        ],
    script:
        "../../scripts/render_figure_examples.py"


rule render_figure_heatmap:
    input:
        summary=targets.DATASET_SUMMARY,
        attacks=targets.OPA_ATTACKS,
    output:
        figure=report(
            targets.OPA_FIG_HEATMAP,
            caption="../../reports/one_pixel_heatmap.rst",
            category="One-pixel attack",
            subcategory="{dataset}/{net}, {pixels} pixel(s)",
        ),
    log:
        "logs/render_figure_heatmap/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}.log",
    benchmark:
        "results/benchmarks/render_figure_heatmap/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        kind="heatmap",
    script:
        "../../scripts/render_figure_class_pairs.py"


rule render_figure_class_counts:
    input:
        summary=targets.DATASET_SUMMARY,
        attacks=targets.OPA_ATTACKS,
    output:
        figure=report(
            targets.OPA_FIG_CLASSES,
            caption="../../reports/one_pixel_class_counts.rst",
            category="One-pixel attack",
            subcategory="{dataset}/{net}, {pixels} pixel(s)",
        ),
    log:
        "logs/render_figure_class_counts/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}.log",
    benchmark:
        "results/benchmarks/render_figure_class_counts/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}/protocol={protocol}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        kind="class_counts",
    script:
        "../../scripts/render_figure_class_pairs.py"


rule render_figure_fitness:
    input:
        attacks=expand(targets.OPA_ATTACKS, protocol="nontargeted", allow_missing=True),
    output:
        figure=report(
            targets.OPA_FIG_FITNESS,
            caption="../../reports/one_pixel_fitness.rst",
            category="One-pixel attack",
            subcategory="{dataset}/{net}, {pixels} pixel(s)",
        ),
    log:
        "logs/render_figure_fitness/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}.log",
    benchmark:
        "results/benchmarks/render_figure_fitness/dataset={dataset}/net={net}/seed={seed}/pixels={pixels}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/render_figure_fitness.py"


rule render_figure_reachable_targets:
    input:
        summary=targets.DATASET_SUMMARY,
        attacks=lambda wc: expand(
            targets.OPA_ATTACKS,
            pixels=plan.experiment_settings(config, "one_pixel", wc.dataset)["pixels"],
            protocol="targeted",
            allow_missing=True,
        ),
    output:
        figure=report(
            targets.OPA_FIG_REACHABLE,
            caption="../../reports/one_pixel_reachable.rst",
            category="One-pixel attack",
            subcategory="{dataset}/{net}",
        ),
    log:
        "logs/render_figure_reachable_targets/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/render_figure_reachable_targets/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/render_figure_reachable_targets.py"


rule render_figure_search_methods:
    input:
        attacks=lambda wc: [
            targets.OPA_ATTACKS.format(
                **targets.model_wildcards(wc), pixels=d, protocol=p
            )
            for d in plan.experiment_settings(config, "one_pixel", wc.dataset)[
                "pixels"
            ]
            for p in plan.SEARCH_PROTOCOLS
            if p
            in plan.experiment_settings(config, "one_pixel", wc.dataset)["protocols"]
        ],
    output:
        figure=report(
            targets.OPA_FIG_METHODS,
            caption="../../reports/one_pixel_search_methods_figure.rst",
            category="One-pixel search methods",
            subcategory="{dataset}/{net}",
        ),
    log:
        "logs/render_figure_search_methods/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/render_figure_search_methods/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    script:
        "../../scripts/render_figure_search_methods.py"


# Figures of the fooling images (FOOL Figs 4-7 and 13).


rule render_figure_elites:
    input:
        data=targets.DATASET,
        runs=lambda wc: [
            r
            for r in targets.fool_runs(config, wc)
            if f"encoding={wc.encoding}/insertion={wc.insertion}/" in r
        ],
    output:
        figure=report(
            targets.FOOL_FIG_ELITES,
            caption="../../reports/fooling_elites.rst",
            category="Fooling images",
            subcategory="{dataset}/{net}",
        ),
    log:
        "logs/render_figure_elites/dataset={dataset}/net={net}/seed={seed}/{encoding}_{insertion}.log",
    benchmark:
        "results/benchmarks/render_figure_elites/dataset={dataset}/net={net}/seed={seed}/{encoding}_{insertion}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=fooling_budget,
    script:
        "../../scripts/render_figure_elites.py"


rule render_figure_class_confidence:
    input:
        summary=targets.DATASET_SUMMARY,
        elites=targets.FOOL_ELITES,
    output:
        figure=report(
            targets.FOOL_FIG_CLASSES,
            caption="../../reports/fooling_class_confidence.rst",
            category="Fooling images",
            subcategory="{dataset}/{net}",
        ),
    log:
        "logs/render_figure_class_confidence/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/render_figure_class_confidence/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=fooling_budget,
    script:
        "../../scripts/render_figure_class_confidence.py"


rule render_figure_progress:
    input:
        history=targets.FOOL_HISTORY,
    output:
        figure=report(
            targets.FOOL_FIG_PROGRESS,
            caption="../../reports/fooling_progress.rst",
            category="Fooling images",
            subcategory="{dataset}/{net}",
        ),
    log:
        "logs/render_figure_progress/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/render_figure_progress/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=fooling_budget,
    script:
        "../../scripts/render_figure_progress.py"


rule render_figure_gradient_ascent:
    input:
        result=targets.FOOL_ASCENT,
    output:
        figure=report(
            targets.FOOL_FIG_ASCENT,
            caption="../../reports/fooling_ascent.rst",
            category="Fooling images",
            subcategory="{dataset}/{net}",
        ),
    log:
        "logs/render_figure_gradient_ascent/dataset={dataset}/net={net}/seed={seed}.log",
    benchmark:
        "results/benchmarks/render_figure_gradient_ascent/dataset={dataset}/net={net}/seed={seed}.tsv"
    conda:
        "../../envs/evofool.yaml"
    threads: 1
    params:
        budget=ascent_budgets,
    script:
        "../../scripts/render_figure_gradient_ascent.py"
