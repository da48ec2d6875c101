"""Facts about notebook 06 as executed: run in its kernel after its last cell (see
sngan_edu.course.nbval_facts), so the names below are the notebook's variables. The quotes of
the stored study in its prose are checked by tests/test_stored_results.py."""


def fact_the_stored_study_has_four_seeds_of_every_setting_with_and_without_sn():
    assert seeds == [0, 1, 2, 3] and len(results["runs"]) == 48  # noqa: F821
    assert len(rows) == 12 and all(r["runs"] == 4 and r["failed"] == 0 for r in rows)  # noqa: F821
    assert len(grids) == 48  # noqa: F821


def fact_sn_has_the_lower_mean_fd_everywhere_but_wins_only_in_a_d_e():
    assert lower_mean == list("ABCDEF")  # noqa: F821
    assert len(pairs) == 24 and lost == [("B", 2)]  # noqa: F821
    by_setting = {w["setting"]: w for w in wins}  # noqa: F821
    for s in "ADE":
        assert (by_setting[s]["sn_wins"], by_setting[s]["baseline_works"]) == (4, 0)
    for s in "BCF":
        assert by_setting[s]["neither"] == 4 and by_setting[s]["sn_works"] == 0
    assert [w["sn_wins"] for w in loose] == [4, 0, 0, 4, 4, 1]  # noqa: F821


def fact_the_collapsed_runs_are_four_unnormalized_ones():
    assert [(r["setting"], r["seed"]) for r in collapsed] == [  # noqa: F821
        ("F", 0), ("B", 1), ("F", 2), ("F", 3)]
    assert all(r["regularizer"] == "none" for r in collapsed)  # noqa: F821


def _watch(setting, regularizer):
    return next(w for w in watches  # noqa: F821
                if (w.setting, w.regularizer) == (setting, regularizer))


def fact_the_short_runs_trained_and_measured_every_ten_steps():
    assert len(watches) == 4  # noqa: F821
    for w in watches:  # noqa: F821
        assert w.steps == list(range(0, WATCH_STEPS + 1, 10))  # noqa: F821
        assert len(w.layers) == 8 and len(w.grad_fake) == len(w.steps)


def fact_without_sn_d_starts_flat_and_grows_faster_at_the_larger_learning_rate():
    c, d = _watch("C", "none"), _watch("D", "none")
    assert c.product[0] < 1e-3 and d.product[0] < 1e-3  # "near 10^-4"
    assert d.product[-1] > 2 and d.largest_layer[-1] > 2.2  # grows step after step
    assert d.product[-1] > d.product[len(d.steps) // 2] > d.product[1]
    assert d.product[-1] > 5 * c.product[-1]
    assert 2.0 < c.largest_layer[-1] < 3.0  # "levels off between 2 and 3"
    # C's unnormalized gradient is mostly far smaller than SN's, about a tenth or less at the end
    c_sn = _watch("C", "sn")
    assert c.grad_fake[-1] < 0.25 * c_sn.grad_fake[-1]

    def median_after_30(w):
        values = sorted(g for step, g in zip(w.steps, w.grad_fake, strict=True) if step >= 30)
        return values[len(values) // 2]

    assert median_after_30(c) < 0.5 * median_after_30(c_sn)


def fact_with_sn_every_layer_stays_near_one_but_not_exactly():
    for setting in "CD":
        w = _watch(setting, "sn")
        factors = [v for values in w.layers.values() for v in values]
        assert 0.95 < min(factors) and max(factors) < 1.3
        assert 1.0 < w.product[-1] < 2.0
        later = [g for step, g in zip(w.steps, w.grad_fake, strict=True) if step >= 30]
        assert all(0.35 < g < 2.5 for g in later)  # "between about 0.5 and 2"
    top = max(_watch("D", "sn").largest_layer)
    assert 1.08 < top < 1.25  # "reaches about 1.15"
    ends = [_watch(setting, "sn").product[-1] for setting in "CD"]
    assert all(1.05 < p < 1.5 for p in ends)  # "the product over eight layers about 1.2"
