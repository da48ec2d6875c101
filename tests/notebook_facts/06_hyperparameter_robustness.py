"""Facts about notebook 06 as executed: run in its kernel after its last cell (see
tools.nbval_facts), so the names below are the notebook's variables. The quotes of
the stored study in its prose are checked by tests/test_stored_results.py."""


def fact_the_stored_study_has_four_seeds_of_every_setting_with_and_without_sn():
    assert seeds == [0, 1, 2, 3] and len(results["runs"]) == 48  # noqa: F821
    assert len(rows) == 12 and all(r["runs"] == 4 and r["failed"] == 0 for r in rows)  # noqa: F821
    assert len(grids) == 48  # noqa: F821


def fact_the_bar_is_the_median_fd_of_real_digits_of_eight_classes():
    assert len(eight_classes) == 45 and BAR == 88 and NEAR == (73, 99)  # noqa: F821
    assert (round(eight_classes[0]), round(eight_classes[-1])) == (44, 163)  # noqa: F821
    assert len(real_vs_real) == 5  # noqa: F821
    assert (round(real_vs_real[0]), round(real_vs_real[-1])) == (12, 18)  # noqa: F821
    # "five to seven times what real digits score against other real digits"
    assert 4.5 * real_vs_real[-1] < BAR < 7.5 * real_vs_real[0]  # noqa: F821


def fact_sn_has_the_lower_mean_fd_everywhere_but_wins_only_in_a_d_e():
    from sngan_edu.experiments.sweep import wins_where_runs_work

    assert lower_mean == list("ABCDEF")  # noqa: F821
    assert len(pairs) == 24 and lost == [("B", 2)]  # noqa: F821
    by_setting = {w["setting"]: w for w in wins}  # noqa: F821
    for s in "ADE":
        assert (by_setting[s]["sn_wins"], by_setting[s]["baseline_works"]) == (4, 0)
    for s in "BCF":
        assert by_setting[s]["neither"] == 4 and by_setting[s]["sn_works"] == 0
    low = {w["setting"]: w for w in wins_where_runs_work(results, max_fd=NEAR[0])}  # noqa: F821
    assert [low[s]["sn_wins"] for s in "ABCDEF"] == [4, 0, 0, 4, 3, 0]
    assert low["E"]["neither"] == 1
    high = wins_where_runs_work(results, max_fd=NEAR[1])  # noqa: F821
    assert high == wins  # noqa: F821


def fact_under_notebook_05s_recipe_one_unnormalized_run_in_three_works():
    from sngan_edu.experiments.sweep import wins_where_runs_work

    for study in recipe.values():  # noqa: F821
        (w,) = wins_where_runs_work(study, max_fd=BAR)  # noqa: F821
        assert (w["pairs"], w["sn_works"], w["baseline_works"], w["sn_wins"]) == (3, 3, 1, 3)
        (low,) = wins_where_runs_work(study, max_fd=NEAR[0])  # noqa: F821
        assert low["sn_wins"] == 3


def fact_the_collapsed_runs_are_four_unnormalized_ones():
    assert [(r["setting"], r["seed"]) for r in collapsed] == [  # noqa: F821
        ("F", 0), ("B", 1), ("F", 2), ("F", 3)]
    assert all(r["regularizer"] == "none" for r in collapsed)  # noqa: F821


def _watch(setting, regularizer, init="paper"):
    return next(w for w in watches  # noqa: F821
                if (w.setting, w.regularizer, w.init) == (setting, regularizer, init))


def _late_median(w):
    """The median of the gradient norms on generated digits from step 30 on."""
    values = sorted(g for step, g in zip(w.steps, w.grad_fake, strict=True) if step >= 30)
    return (values[(len(values) - 1) // 2] + values[len(values) // 2]) / 2


# The short runs below differ from one CPU to another (another CPU is, in effect, another
# seed): each fact holds for every seed of benchmarks/results/watch_seeds.json, which
# tests/test_notebook06.py checks by running these facts on each of them.


def fact_the_short_runs_are_the_benchmarked_ones_measured_every_ten_steps():
    from sngan_edu.experiments import lipschitz_runs

    assert WATCH_STEPS == lipschitz_runs.WATCH_STEPS  # noqa: F821
    assert [(w.setting, w.regularizer, w.init) for w in watches] == list(  # noqa: F821
        lipschitz_runs.WATCH_RUNS)
    for w in watches:  # noqa: F821
        assert w.steps == list(range(0, WATCH_STEPS + 1, 10))  # noqa: F821
        assert len(w.layers) == 8 and len(w.grad_fake) == len(w.steps)


def fact_without_sn_d_starts_flat_unless_started_at_sns_scale():
    for setting in "CD":
        assert _watch(setting, "none").product[0] < 1e-3  # "near 10^-4"
        unit = _watch(setting, "none", "unit")
        assert abs(unit.product[0] - 1) < 1e-3
        assert all(abs(values[0] - 1) < 1e-3 for values in unit.layers.values())


def fact_the_small_start_starves_the_generator_under_c():
    sn, flat, unit = _watch("C", "sn"), _watch("C", "none"), _watch("C", "none", "unit")
    assert _late_median(flat) < 0.35 * _late_median(sn)  # 0.02-0.22 against 0.80-1.06
    assert _late_median(unit) > 2 * _late_median(flat)
    assert _late_median(unit) > 0.35 * _late_median(sn)  # "as much as SN's, or about half"


def fact_under_d_the_bound_grows_without_sn_while_the_signal_matches_sns():
    sn, unit = _watch("D", "sn"), _watch("D", "none", "unit")
    assert 10 < unit.product[-1] < 30  # "15 to 18 by step 120"
    assert unit.product[-1] > 8 * sn.product[-1]
    assert unit.product[-1] > 2 * _watch("C", "none", "unit").product[-1]  # C: 5.0 to 6.5
    assert unit.product[-1] > unit.product[len(unit.steps) // 2] > unit.product[1]
    assert 0.5 * _late_median(sn) < _late_median(unit) < 2 * _late_median(sn)


def fact_with_sn_every_layer_stays_near_one_but_not_exactly():
    for setting in "CD":
        w = _watch(setting, "sn")
        factors = [v for values in w.layers.values() for v in values]
        assert 0.95 < min(factors) and max(factors) < 1.4
        assert 0.99 < w.product[-1] < 2.5  # above 1 (1.0-1.4 over five seeds, 1.68 once)
        assert 0.5 < _late_median(w) < 2.0  # each seed's median 0.80-1.22
        assert all(g > 0.1 for step, g in zip(w.steps, w.grad_fake, strict=True) if step >= 30)
    top = max(_watch("D", "sn").largest_layer)
    assert 1.08 < top < 1.35  # "the largest reaches 1.14 to 1.26"
