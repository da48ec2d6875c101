"""Fixtures shared by several test modules, and the slow tier.

``make check`` runs the tests not marked ``slow`` (``-m "not slow"``); ``make test`` runs all.
A test file marks its own slow tests with ``@pytest.mark.slow``; :data:`SLOW` adds the mark to
tests of other files by node id prefix (relative to tests/), so their files need not change.
"""

import pytest
import torch

from sngan_edu import sn

# torch seeds its global generator at random when it starts: seeded here, the modules that test
# files build while pytest collects them (parametrize arguments) have the same weights every run.
torch.manual_seed(0)

#: Tests that take more than a few seconds: subprocesses (torchrun, compile, nbgrader,
#: papermill, benchmark scripts) and training runs.
SLOW = (
    "test_distributed.py",  # torchrun DDP with gloo, torch.compile
    "test_gpu_check.py",  # the GPU benchmark script in its quick CPU mode
    "test_nbgrader_course.py",  # nbgrader generates and grades the assignment
    "test_student.py::test_student_copy_fails_every_check_with_not_implemented",  # papermill
    "test_student.py::test_solution_passes_every_check",
    "test_student.py::test_an_endless_loop_in_a_returned_copy_fails_its_check_under_papermill",
    # the Keras appendix's cells, executed once for these (notebook_state)
    "test_keras_appendix.py::test_notebook_comparison_table",
    "test_keras_appendix.py::test_notebook_stored_kernel_table",
    "test_keras_appendix.py::test_notebook_gradient_numbers",
    "test_keras_appendix.py::test_notebook_training_and_inference_table",
    # training runs of run_sngan (digits_run and its own runs)
    "test_sngan_run.py::test_a_run_writes_its_folder",
    "test_sngan_run.py::test_a_resumed_run_continues_the_same_run",
    "test_sngan_run.py::test_a_folder_holding_a_run_is_refused_unless_resume_or_overwrite",
    "test_sngan_run.py::test_resume_needs_a_checkpoint_of_the_same_run_not_past_steps",
    "test_sngan_run.py::test_a_locked_folder_is_refused_and_a_stale_lock_taken_over",
    "test_sngan_run.py::test_a_setup_run_twice_claims_its_folder_again",
    "test_sngan_run.py::test_short_runs_checkpoint_at_evaluations_and_write_json_atomically",
    "test_sngan_run.py::test_max_minutes_stops_training_early_and_keeps_a_checkpoint",
    "test_sngan_run.py::test_resnet_without_sn_with_a_latent_code",
    "test_rescore.py::test_loaded_generator_samples_like_the_trainer",
    "test_rescore.py::test_every_run_is_checked_before_any_is_scored",
    "test_rescore.py::test_results_are_written_after_each_run",
    "test_evaluator.py::test_held_out_accuracy",  # trains the digit classifier
    "test_sn.py::test_sigma_demo_slider_retrains_with_new_setting",
)


@pytest.hookimpl(tryfirst=True)  # before -m "not slow" deselects
def pytest_collection_modifyitems(items):
    for item in items:
        if item.nodeid.removeprefix("tests/").startswith(SLOW):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="module")
def one_thread():
    """torch on one thread for a module (tiny tensors: faster, and steady on a busy CPU); the
    thread count is restored after it. Use: ``pytestmark = pytest.mark.usefixtures("one_thread")``.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def power_iteration_counts(monkeypatch) -> dict[int, int]:
    """Total power iterations run per ``sn.SpectralNorm`` module (keyed by id) from now on."""
    counts: dict[int, int] = {}
    original = sn.SpectralNorm.power_iteration

    def counting(self, weight_mat, n_iters):
        counts[id(self)] = counts.get(id(self), 0) + n_iters
        return original(self, weight_mat, n_iters)

    monkeypatch.setattr(sn.SpectralNorm, "power_iteration", counting)
    return counts


@pytest.fixture
def runner_optimizers():
    """``make(G, D, config)``: Adam for G and D with the run's lr and betas, and the average of
    G's weights, as the runner builds them around the loop (notebooks 05 and 07's loop tests)."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    def make(G, D, config):
        adam = config.optimizer
        betas = (adam["beta1"], adam["beta2"])
        return (torch.optim.Adam(G.parameters(), lr=adam["lr_g"], betas=betas),
                torch.optim.Adam(D.parameters(), lr=adam["lr_d"], betas=betas),
                AveragedModel(G, multi_avg_fn=get_ema_multi_avg_fn(config.g_ema),
                              use_buffers=True))
    return make
