"""sngan_edu.device: device names, and the CPU threads a run takes under OMP_NUM_THREADS."""

import pytest
import torch

from sngan_edu.device import cpu_thread_count, resolve_device
from sngan_edu.experiments.sngan_run import prepare_run
from sngan_edu.train.config import RunConfig


@pytest.mark.parametrize(("limit", "requested", "expected"), [
    (None, 2, 2), (None, None, None), ("1", 2, 1), ("4", 2, 2), ("1", None, None),
    ("", 3, 3), ("0", 2, 2), ("many", 2, 2)])
def test_omp_num_threads_caps_the_requested_threads(monkeypatch, limit, requested, expected):
    if limit is None:
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("OMP_NUM_THREADS", limit)
    assert cpu_thread_count(requested) == expected


def test_a_run_sets_the_capped_thread_count(monkeypatch, tmp_path):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        setup = prepare_run(RunConfig(steps=1, width=0.0625, d_width=0.0625, out_dir=str(tmp_path),
                                      cpu_threads=2, progress=False))
        assert torch.get_num_threads() == 1
        setup.release()
    finally:
        torch.set_num_threads(before)


def test_device_names():
    assert resolve_device("CPU") == torch.device("cpu")
    assert resolve_device(torch.device("cpu")) == torch.device("cpu")
    with pytest.raises(ValueError, match="device must be one of"):
        resolve_device("tpu")
