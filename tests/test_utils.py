"""Atomic writes: the old file survives a failed write, and new files get normal permissions."""

import os

import pytest

from ctcasr.utils import atomic_open, atomic_write_text


def test_atomic_write_gives_umask_permissions(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert os.stat(tmp_path / "a.txt").st_mode & 0o777 == 0o644


def test_failed_write_leaves_old_file_and_no_temp(tmp_path):
    p = tmp_path / "model.yaml"
    atomic_write_text(p, "old")
    with pytest.raises(RuntimeError), atomic_open(p) as f:
        f.write("half")
        raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert sorted(os.listdir(tmp_path)) == ["model.yaml"]
