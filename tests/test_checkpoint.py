"""Checkpoint files: atomic writes, a SHA-256 that catches damage, clear errors for non-files."""

from __future__ import annotations

import json
import os

import pytest
import torch

from sngan_edu.train import checkpoint as ckpt


def _state():
    g = torch.Generator().manual_seed(0)
    return {"step": 7, "G": {"w": torch.randn(64, 64, generator=g)}, "history": {"loss": [1.0]}}


def test_round_trip_keeps_every_tensor(tmp_path):
    path = ckpt.save_atomic(_state(), tmp_path / "checkpoint.pt")
    loaded = ckpt.load(path)
    assert loaded["step"] == 7 and loaded["history"] == {"loss": [1.0]}
    assert torch.equal(loaded["G"]["w"], _state()["G"]["w"])


def test_flipped_bytes_in_the_payload_are_refused(tmp_path):
    path = ckpt.save_atomic(_state(), tmp_path / "checkpoint.pt")
    data = bytearray(path.read_bytes())
    weights = _state()["G"]["w"].numpy().tobytes()  # stored verbatim inside the payload
    start = data.find(weights[:64])
    assert start > 0
    for i in range(start + 100, start + 300):  # 200 flipped bytes inside the weights
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ckpt.CheckpointError, match="is damaged: its content does not match"):
        ckpt.load(path)


def test_a_wrong_checksum_is_refused(tmp_path):
    path = ckpt.save_atomic(_state(), tmp_path / "checkpoint.pt")
    outer = torch.load(path, weights_only=True)
    outer["sha256"] = "0" * 64
    torch.save(outer, path)
    with pytest.raises(ckpt.CheckpointError, match="damaged"):
        ckpt.load(path)


@pytest.mark.parametrize("content", [b"", os.urandom(4096), b"PK\x03\x04 truncated"])
def test_files_that_are_not_checkpoints_say_so(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    path.write_bytes(content)
    with pytest.raises(ckpt.CheckpointError, match=r"checkpoint at .*checkpoint\.pt is not a "
                                                   r"valid checkpoint"):
        ckpt.load(path)


def test_a_missing_file_names_the_path(tmp_path):
    with pytest.raises(ValueError, match="checkpoint not found"):
        ckpt.load(tmp_path / "nothing.pt")


def test_a_bare_torch_save_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "bare.pt"
    torch.save(_state(), path)  # a state dict without the checksum wrapper
    with pytest.raises(ckpt.CheckpointError, match=r"bare\.pt is not a sngan-edu checkpoint"):
        ckpt.load(path)


def test_orphan_temporary_files_are_removed_at_the_next_write(tmp_path):
    orphan = tmp_path / "checkpoint.pt.abc123.tmp"
    orphan.write_bytes(b"half a checkpoint")
    other = tmp_path / "notes.tmp"
    other.write_text("not ours")
    ckpt.save_atomic(_state(), tmp_path / "checkpoint.pt")
    assert not orphan.exists() and other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "notes.tmp"]


def test_json_is_written_atomically(tmp_path, monkeypatch):
    path = ckpt.write_json_atomic({"a": [1, 2]}, tmp_path / "metrics.json")
    assert json.loads(path.read_text()) == {"a": [1, 2]}

    def crash(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        ckpt.write_json_atomic({"a": "new"}, path)
    assert json.loads(path.read_text()) == {"a": [1, 2]}  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]  # no temporary file left
