"""The figures notebook 05 quotes are the ones in the committed result files (shipped in the
package: sngan_edu/assets/studies/)."""

import functools
import json
from pathlib import Path

import nbformat
import pytest
import torch

from sngan_edu.assets import study_path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = ROOT / "notebooks" / "05_sngan_training.ipynb"
# Notebook 05's experiment log (its defaults over seeds, rescoring) lives in REPRODUCING.md.
REPRODUCING = ROOT / "REPRODUCING.md"


def load(name: str) -> dict:
    return json.loads(study_path(name).read_text())


def seed_range(name: str, key: str, digits: int, regularizer: str = "sn") -> str:
    runs = load(name)["runs"]
    values = [r["final"][key] if key in r["final"] else r[key]  # a score, or train_seconds
              for r in runs if r["regularizer"] == regularizer and r["status"] == "ok"]
    assert len(values) == 3  # three seeds
    return f"{min(values):.{digits}f}-{max(values):.{digits}f}"


@pytest.mark.parametrize(
    ("results", "key", "digits", "regularizer"),
    [("notebook05_seeds.json", "confidence", 3, "sn"),
     ("notebook05_seeds.json", "fd", 0, "sn"), ("notebook05_seeds.json", "fd", 0, "none"),
     ("notebook05_seeds.json", "confidence_plain", 3, "sn"),
     ("notebook05_seeds.json", "confidence_plain", 2, "none"),
     ("notebook05_seeds.json", "train_seconds", 0, "sn"),
     ("notebook05_seeds_batch64.json", "confidence", 3, "sn"),
     ("notebook05_seeds_batch64.json", "fd", 0, "sn"),
     ("notebook05_translate_seeds.json", "confidence", 3, "sn"),
     ("notebook05_translate_seeds.json", "fd", 0, "sn")],
)
def test_quoted_ranges_match_the_result_files(results, key, digits, regularizer):
    assert seed_range(results, key, digits, regularizer) in markdown_text()


@functools.cache
def notebook_cells() -> list:
    return nbformat.read(NOTEBOOK, 4).cells


def prose(cells: list) -> str:
    """The markdown of notebook cells with every run of whitespace as one space."""
    return " ".join(" ".join(c.source.split()) for c in cells if c.cell_type == "markdown")


@functools.cache
def markdown_text() -> str:
    """REPRODUCING.md with every run of whitespace as one space."""
    return " ".join(REPRODUCING.read_text().split())


@functools.cache
def notebook_06_text() -> str:
    return prose(nbformat.read(ROOT / "notebooks" / "06_hyperparameter_robustness.ipynb", 4).cells)


def test_the_quoted_count_of_unnormalized_runs_that_missed_a_class():
    runs = load("notebook05_seeds.json")["runs"]
    missed = sum(r["final"]["classes"] < 10 for r in runs if r["regularizer"] == "none")
    words = {0: "no", 1: "one", 2: "two", 3: "all"}[missed]
    assert f"{words} of three runs missed a class" in markdown_text()


def test_the_stored_seeds_were_run_with_the_notebooks_defaults():
    from sngan_edu.train.config import RunConfig

    cell = next(c for c in notebook_cells() if "parameters" in c.metadata.get("tags", []))
    # What the notebook runs: RunConfig's defaults, with its parameters cell's values
    defaults: dict = {name: getattr(RunConfig(), name) for name in RunConfig.names()}
    exec(cell.source, {}, defaults)  # plain assignments
    stored = load("notebook05_seeds.json")
    assert stored["steps"] == defaults["steps"]
    assert stored["parameters"]  # else the loop below checks nothing
    for key, value in stored["parameters"].items():
        assert defaults[key] == value, key


def test_the_comparison_runs_differ_from_the_defaults_only_where_they_say():
    base = load("notebook05_seeds.json")
    shifted = load("notebook05_translate_seeds.json")
    assert shifted["parameters"] == {**base["parameters"], "translate": 1}
    assert shifted["steps"] == base["steps"]
    batch64 = load("notebook05_seeds_batch64.json")
    # batch 64 and z_dim 128 were notebook 05's defaults then (not passed, so not recorded)
    changed = ("batch_size", "eval_every", "z_dim")
    same = {k: v for k, v in base["parameters"].items() if k not in changed}
    assert batch64["parameters"] == {**same, "eval_every": 250}
    assert batch64["steps"] == 1500 and base["parameters"]["z_dim"] == 128


def test_the_stored_sweep_is_the_sweep_commands_default_study():
    """Notebook 06 describes the stored sweep_results.json as `make sweep`'s output: the pinned
    model and budget, every setting with and without SN, and a kept sample grid for each run."""
    from sngan_edu.experiments import sweep

    stored = load("sweep_results.json")
    assert stored["steps"] == sweep.DEFAULT_STEPS
    assert stored["parameters"] == sweep.SWEEP_PARAMETERS
    cells = {(r["setting"], r["regularizer"]) for r in stored["runs"]}
    assert cells == {(s, r) for s in sweep.SETTINGS for r in sweep.REGULARIZERS}
    folder = sweep.samples_folder(sweep.STORED_RESULTS)
    for run in stored["runs"]:
        assert run["step"] == sweep.DEFAULT_STEPS
        if run["status"] == "ok":
            assert (folder / run["samples"]).is_file()


def test_the_setting_e_check_is_the_defaults_with_setting_e_on_one_thread():
    base = load("notebook05_seeds.json")
    setting_e = load("notebook05_setting_e.json")
    assert setting_e["parameters"] == {**base["parameters"], "cpu_threads": 1}
    assert setting_e["steps"] == base["steps"]
    runs = sorted(setting_e["runs"], key=lambda r: r["seed"])
    assert [(r["setting"], r["regularizer"], r["seed"]) for r in runs] == [
        ("E", "sn", 0), ("E", "sn", 1)]
    seed0, seed1 = (f"{r['final']['confidence']:.3f}" for r in runs)  # in seed order
    assert f"confidence of {seed0} and {seed1} on seeds 0 and 1" in markdown_text()


def test_notebook_06_quotes_the_stored_sweep():
    from sngan_edu.experiments import sweep

    text = notebook_06_text()
    stored = load("sweep_results.json")
    seeds = (0, 1, 2, 3)
    assert sorted({r["seed"] for r in stored["runs"]}) == list(seeds)
    assert "holds four seeds" in text and "(four seeds, 3000 generator updates" in text
    rows = {(r["setting"], r["regularizer"]): r for r in sweep.sweep_table(stored)}

    def fd(setting, reg):
        return f"{rows[(setting, reg)]['fd']:.0f}"

    def classes(setting, reg):
        return f"{rows[(setting, reg)]['classes']:.1f}"

    def final(setting, reg, seed):
        return next(r["final"] for r in stored["runs"]
                    if (r["setting"], r["regularizer"], r["seed"]) == (setting, reg, seed))

    # "lower mean FD in all six settings, and ... in 23 of the 24 pairs": B on seed 2 is not
    assert all(rows[(s, "sn")]["fd"] < rows[(s, "none")]["fd"] for s in "ABCDEF")
    lost = [(s, seed) for s in "ABCDEF" for seed in seeds
            if final(s, "sn", seed)["fd"] >= final(s, "none", seed)["fd"]]
    assert lost == [("B", 2)] and sweep.same_seed_losses(stored) == (
        [(s, seed) for s in "ABCDEF" for seed in seeds], lost)
    assert "SN has the lower mean Fréchet distance in all six settings" in text
    assert f"the lower FD in {6 * len(seeds) - len(lost)} of the {6 * len(seeds)} pairs" in text
    b_sn, b_none = final("B", "sn", 2), final("B", "none", 2)
    assert (b_sn["classes"], b_none["classes"]) == (3, 4)
    assert f"SN draws three digits (FD {b_sn['fd']:.0f}), the unnormalized GAN four (FD " \
           f"{b_none['fd']:.0f})" in text
    assert f"reach FD {fd('D', 'sn')} and {fd('E', 'sn')} with all ten digits in every run" in text
    assert rows[("D", "sn")]["classes_range"] == rows[("E", "sn")]["classes_range"] == (10, 10)
    assert f"sit at {fd('D', 'none')} and {fd('E', 'none')}" in text
    assert (classes("D", "none"), classes("E", "none")) == ("6.8", "8.0")
    assert "cover 6.8 and 8 digits on average" in text
    assert rows[("F", "none")]["classes_range"] == (2, 5) and classes("F", "none") == "2.8"
    assert "collapses to 2.8 digits on average (between two and five)" in text
    assert rows[("F", "sn")]["classes"] == 9 and "SN-GAN keeps nine" in text
    low, high = (f"{v:.0f}" for v in rows[("A", "sn")]["fd_range"])
    assert f"works with SN** (FD {fd('A', 'sn')}, between {low} and {high} over the" in text
    assert min(final(s, "sn", seed)["fd"] for s in "BC" for seed in seeds) > 500
    assert (classes("B", "sn"), classes("C", "sn")) == ("6.8", "9.0")
    assert (classes("B", "none"), classes("C", "none")) == ("3.2", "6.8")
    assert "SN covers 6.8 and nine digits" in text and "cover 3.2 and 6.8" in text
    collapsed = [(r["setting"], r["seed"], f"{r['final']['confidence']:.2f}")
                 for r in stored["runs"] if r["final"]["classes"] <= 2]
    assert collapsed == [
        ("F", 0, "0.90"), ("B", 1, "0.88"), ("F", 2, "0.98"), ("F", 3, "0.89")]
    assert all(r["regularizer"] == "none" for r in stored["runs"] if r["final"]["classes"] <= 2)
    assert ("four collapsed unnormalized runs printed above (F on seeds 0, 2 and 3, B on seed 1)"
            in text)
    assert "confidences of 0.90, 0.98, 0.89 and 0.88" in text
    top_sn = max(r["final"]["confidence"] for r in stored["runs"] if r["regularizer"] == "sn")
    assert f"higher than any SN run in the study (at most {top_sn:.2f})" in text and top_sn < 0.98
    best = sorted(rows.values(), key=lambda r: r["fd"])[:2]
    assert [(r["setting"], r["regularizer"]) for r in best] == [("D", "sn"), ("E", "sn")]
    assert f"with SN (mean FD {fd('D', 'sn')} and {fd('E', 'sn')})" in text
    conf = [f"{rows[(s, 'sn')]['confidence']:.2f}" for s in "DE"]
    assert f"mean confidences of {conf[0]} and {conf[1]}, below the 0.95" in text
    a = [f"{final('A', 'none', seed)['fd']:.0f}" for seed in seeds]
    assert f"has FD {a[0]}, {a[1]}, {a[2]} and {a[3]} on seeds 0 to 3" in text
    low, high = (f"{v:.0f}" for v in rows[("A", "none")]["fd_range"])
    assert f"and not without it (FD {low} to {high})" in text
    # wins counted only where a run works (FD < 100 and at least 8 classes)
    wins = {w["setting"]: w for w in sweep.wins_where_runs_work(stored)}
    assert all(wins[s]["sn_wins"] == wins[s]["sn_works"] == 4 and wins[s]["baseline_works"] == 0
               for s in "ADE")
    assert all(wins[s]["neither"] == 4 for s in "BCF")
    assert "In A, D and E every SN run works and no unnormalized run does: SN wins all 12" in text
    assert "In B, C and F no run works, with or without SN" in text
    b_c = [final(s, reg, seed)["fd"] for s in "BC" for reg in ("sn", "none") for seed in seeds]
    assert 500 < min(b_c) and max(b_c) < 1600 and "both arms fail (FD 500-1600)" in text
    loose = {w["setting"]: w["sn_wins"] for w in sweep.wins_where_runs_work(stored, max_fd=200)}
    assert loose == {"A": 4, "B": 0, "C": 0, "D": 4, "E": 4, "F": 1}
    assert "Raising the bar to FD 200 changes one count: F gains one SN win" in text
    best_f = min(final("F", "sn", seed)["fd"] for seed in seeds)
    assert f"even its best run has FD {best_f:.0f}" in text
    # what is compared: SN against no normalization, not the paper's Figure 1 methods
    assert "what does SN change compared with no normalization at all?" in text
    assert "Figure 1 in miniature" not in text and "SN wins in all six" not in text


def test_the_extra_seeds_of_the_best_cell_are_the_sweeps_study():
    """The stored sweep_e_sn_seeds.json (seeds 1 and 2 of E with SN, run on another machine) is the
    same study as the stored sweep. Notebook 06 no longer tells that machine history."""
    from sngan_edu.experiments import sweep

    extra = load("sweep_e_sn_seeds.json")
    assert extra["parameters"] == load("sweep_results.json")["parameters"]
    assert extra["steps"] == sweep.DEFAULT_STEPS
    runs = sorted(extra["runs"], key=lambda r: r["seed"])
    assert [(r["setting"], r["regularizer"], r["seed"]) for r in runs] == [
        ("E", "sn", 1), ("E", "sn", 2)]
    text = notebook_06_text()
    assert "another machine" not in text and "sweep_e_sn_seeds" not in text


def test_notebook_06_quotes_the_training_times_by_n_dis():
    runs = load("sweep_results.json")["runs"]
    times = {n: [r["train_seconds"] for r in runs if r["optimizer"]["n_dis"] == n] for n in (1, 5)}
    five, one = (f"{min(times[n]):.0f}-{max(times[n]):.0f} s" for n in (5, 1))
    ratio = (sum(times[5]) / len(times[5])) / (sum(times[1]) / len(times[1]))
    assert f"trained for {five}, against {one} for B and C" in notebook_06_text()
    assert f"about {ratio:.1f} times longer" in notebook_06_text()


def _rescored_by_regularizer() -> dict[str, list[dict]]:
    """The 10,000-sample re-scores of the stored seed runs, by regularizer, in seed order."""
    rows = load("notebook05_seeds_rescored.json")["runs"]
    return {reg: sorted((r for r in rows if f"_{reg}_" in r["run"]), key=lambda r: r["run"])
            for reg in ("sn", "none")}


def test_the_rescored_runs_are_the_stored_seed_runs():
    stored = {(r["regularizer"], r["seed"]): r["final"]["confidence"]
              for r in load("notebook05_seeds.json")["runs"]}
    rescored = _rescored_by_regularizer()
    for reg, rows in rescored.items():
        assert [r["run"] for r in rows] == [f"D_{reg}_seed{s}" for s in range(3)]
        for seed, row in enumerate(rows):
            # each checkpoint is the run whose 1,000-sample score the seeds file holds
            assert row["reported_confidence"] == pytest.approx(stored[(reg, seed)], abs=1e-7)
            assert row["n_samples"] == 10_000 and row["seed"] == 1


def test_notebook_05_quotes_the_rescored_seeds():
    import statistics

    text = markdown_text()
    rescored = _rescored_by_regularizer()
    for reg, label in (("sn", "SN"), ("none", "no SN")):
        rows = rescored[reg]
        reported = " / ".join(f"{r['reported_confidence']:.3f}" for r in rows)
        precise = " / ".join(f"{r['confidence']:.3f}" for r in rows)
        assert f"| {label}, seeds 0 / 1 / 2 | {reported} | {precise} |" in text
    assert max(r["confidence_se"] for rows in rescored.values() for r in rows) < 0.0025
    sn = [r["confidence"] for r in rescored["sn"]]
    none = [r["confidence"] for r in rescored["none"]]
    shifts = [abs(r["confidence"] - r["reported_confidence"])
              for rows in rescored.values() for r in rows]
    assert f"move by up to {max(shifts):.3f}" in text
    spread = f"{min(sn):.3f}-{max(sn):.3f}"
    assert f"give {spread}, with nearly the same mean ({statistics.mean(sn):.3f})" in text
    assert f"{statistics.mean(sn):.3f} with 10,000" in text
    reported_mean = statistics.mean(r["reported_confidence"] for r in rescored["sn"])
    assert f"is {reported_mean:.3f} with 1,000 samples" in text
    assert f"standard deviation of {statistics.stdev(sn):.3f}" in text
    gap = statistics.mean(sn) - statistics.mean(none)
    assert f"({statistics.mean(sn):.3f} against {statistics.mean(none):.3f} on average)" in text
    assert f"is a gap of {gap:.3f}: four times" in text and round(gap / statistics.stdev(sn)) == 4
    five = [0.844, 0.901, 0.900, 0.893, 0.872]  # the z_categories screen's five default seeds
    assert "0.844 / 0.901 / 0.900 / 0.893 / 0.872" in text
    assert f"about {statistics.stdev(five):.3f}" in text
    assert f"about {gap / statistics.stdev(five):.1f} standard deviations" in text
    at_goal = [f"{c:.3f}" for c in sn if round(c, 2) == 0.90]
    assert f"two SN seeds of three are at 0.90 ({at_goal[0]} and {at_goal[1]})" in text
    assert f"seed 0 is not ({sn[0]:.3f})" in text


def test_notebook_05_quotes_setting_d_against_e_from_the_sweep():
    from sngan_edu.experiments.sweep import sweep_table

    stored = load("sweep_results.json")
    rows = {r["setting"]: r for r in sweep_table(stored) if r["regularizer"] == "sn"}
    d, e = rows["D"], rows["E"]
    assert f"{e['confidence']:.2f}" == f"{d['confidence']:.2f}" and e["fd"] > d["fd"]
    assert len({r["seed"] for r in stored["runs"]}) == 4
    assert (f"had the same mean confidence in that sweep ({e['confidence']:.2f} for both over "
            f"four seeds) and the higher Fréchet distance "
            f"({e['fd']:.0f} against {d['fd']:.0f}) went to E") in markdown_text()


# ------------------------------------------------------------------ notebook 04


@functools.cache
def notebook_04_text() -> str:
    return prose(nbformat.read(ROOT / "notebooks" / "04_toy_gan_mode_collapse.ipynb", 4).cells)


def _toy_summary() -> dict:
    return {(r["dataset"], r["method"]): r for r in load("toy_results.json")["summary"]}


def test_notebook_04_quotes_the_stored_toy_benchmark():
    text = notebook_04_text()
    rows = _toy_summary()
    runs = load("toy_results.json")["runs"]
    sn, gan = rows[("grid", "sn")], rows[("grid", "gan")]
    assert sn["full_coverage"] == sn["seeds"] == 3
    hq = sorted(r["high_quality"] for r in runs if (r["dataset"], r["method"]) == ("grid", "sn"))
    assert (f"with {sn['hq_mean']:.1f}% high quality on average ({hq[0]:.1f} to {hq[-1]:.1f} over "
            f"the seeds) and reverse KL {sn['kl_mean']:.2f}") in text
    missed = [r for r in runs if (r["dataset"], r["method"]) == ("grid", "gan") and r["modes"] < 25]
    assert len(missed) == 1 and "missed modes in one seed of three" in text
    assert f"({missed[0]['modes']} of 25, with its mass uneven: reverse KL " \
           f"{missed[0]['reverse_kl']:.2f}" in text
    assert f"high-quality samples ({gan['hq_mean']:.1f}% on average)" in text
    assert f"our SN-GAN's 25 / {sn['hq_mean']:.1f} / {sn['kl_mean']:.2f} on the grid" in text
    assert f"the high-quality share is {sn['hq_mean']:.2f}% before rounding, a hair below" in text
    assert sn["hq_mean"] < 93.6  # PacGAN4's, which the text says it does not beat
    ring = [rows[("ring", m)]["hq_mean"] for m in ("gan", "sn")]
    assert f"{min(ring):.0f}-{max(ring):.0f}% high" in text
    cpu = [r["cpu_seconds"] / 60 for r in runs]
    assert 1.5 <= min(cpu) and max(cpu) <= 3.1 and "(1.5 to 3 minutes of CPU" in text
    # the unequal comparison is said, and the old claims are gone
    for quote in ["uses the mixtures' *true* mode std", "lr $10^{-4}$, $\\beta_1 = 0.8$, batch 100",
                  "averaged over 10 runs", "16,000 steps of batch 256, three seeds"]:
        assert quote in text, quote
    assert "or better" not in text and "under 2 minutes" not in text


def test_the_stored_toy_samples_are_the_scored_ones():
    import numpy as np

    from sngan_edu.metrics.toy import toy_metrics

    runs = load("toy_results.json")["runs"]
    with np.load(study_path("toy_results_samples.npz")) as stored:
        keys = set(stored.files)
        for r in runs:
            key = f"{r['dataset']}_{r['method']}_seed{r['seed']}"
            if key not in keys:
                continue
            m = toy_metrics(torch.from_numpy(stored[key]), r["dataset"])
            assert (m.modes, round(m.high_quality, 2)) == (r["modes"], r["high_quality"])
            keys.discard(key)
    assert not keys  # every stored sample set belongs to a stored run
    assert {f"grid_{m}_seed{s}" for m in ("gan", "sn") for s in range(3)} <= set(
        np.load(study_path("toy_results_samples.npz")).files)
