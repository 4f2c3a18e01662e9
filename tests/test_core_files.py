"""The shared file and machine helpers of the lowest layer (selconv_lite.core)."""
from __future__ import annotations

import json

import pytest

from selconv_lite.core.files import atomic_write
from selconv_lite.core.machine import cpu_model


def test_atomic_write_replaces_only_when_complete(tmp_path):
    dest = tmp_path / "record.json"
    dest.write_text("old\n")
    with atomic_write(dest, "w") as fh:
        fh.write(json.dumps({"a": 1}))
        assert dest.read_text() == "old\n"          # not visible before the end of the block
    assert json.loads(dest.read_text()) == {"a": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]  # no temporary left


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    dest = tmp_path / "shard.npy"
    dest.write_bytes(b"old")
    with pytest.raises(OSError, match="disk full"):
        with atomic_write(dest, prefix=".tmp-x-", suffix=".npy") as fh:
            fh.write(b"half")
            raise OSError("disk full")
    assert dest.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["shard.npy"]


def test_atomic_write_rejects_other_modes_and_missing_folders(tmp_path):
    with pytest.raises(ValueError, match="mode must be 'wb' or 'w'"):
        with atomic_write(tmp_path / "x", "a"):
            pass
    with pytest.raises(FileNotFoundError):
        with atomic_write(tmp_path / "no_such_folder" / "x"):
            pass


def test_cpu_model_reads_proc_cpuinfo_or_falls_back(monkeypatch):
    import builtins

    name = cpu_model()
    assert isinstance(name, str) and name and "\n" not in name
    real_open = builtins.open

    def no_proc(path, *a, **k):
        if str(path) == "/proc/cpuinfo":
            raise OSError("no /proc")
        return real_open(path, *a, **k)

    monkeypatch.setattr(builtins, "open", no_proc)
    monkeypatch.setattr("platform.processor", lambda: "")
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    assert cpu_model() == "x86_64"
