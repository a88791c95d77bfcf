"""Link-safe read-back of a scratch folder: links, FIFOs, devices and oversize files are refused."""

from __future__ import annotations

import os

import pytest

from rsi_rl.core.errors import RsiRlError
from rsi_rl.exec.scratch_io import ScratchDir, UnsafeScratchFile, format_size


@pytest.fixture
def scratch(tmp_path):
    s = ScratchDir.create(tmp_path / "exp")
    yield s
    s.close()


def test_regular_files_read_whole_head_tail_and_missing(scratch):
    scratch.write_text("a.txt", "0123456789")
    assert scratch.read_bytes("a.txt", 10) == b"0123456789"
    assert scratch.read_head("a.txt", 4) == b"0123"
    assert scratch.read_tail("a.txt", 3) == b"789"
    assert scratch.read_tail("a.txt", 100) == b"0123456789"
    assert scratch.check("a.txt") is True
    for read in (scratch.read_head, scratch.read_tail, scratch.read_bytes):
        assert read("missing.log", 10) is None
    assert scratch.check("missing.log") is False


def test_symlink_is_refused_by_name(scratch, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("do not read me")
    os.symlink(secret, scratch.path / "stderr.log")
    with pytest.raises(UnsafeScratchFile, match="stderr.log is a symbolic link, not a regular"):
        scratch.read_tail("stderr.log", 100)
    assert issubclass(UnsafeScratchFile, RsiRlError)


@pytest.mark.timeout(30)
def test_fifo_and_device_are_refused_without_blocking(scratch):
    os.mkfifo(scratch.path / "log.jsonl")
    with pytest.raises(UnsafeScratchFile, match="log.jsonl is a FIFO"):
        scratch.read_head("log.jsonl", 100)
    os.mknod(scratch.path / "zero", 0o600 | 0o020000, os.makedev(1, 5))  # like /dev/zero
    with pytest.raises(UnsafeScratchFile, match="zero is a character device"):
        scratch.read_bytes("zero", 100)
    (scratch.path / "sub").mkdir()
    with pytest.raises(UnsafeScratchFile, match="sub is a directory"):
        scratch.check("sub")


def test_hard_link_and_oversize_are_refused(scratch):
    scratch.write_bytes("other.npy", b"x" * 2048)
    os.link(scratch.path / "other.npy", scratch.path / "predictions.npy")
    with pytest.raises(UnsafeScratchFile, match="predictions.npy has 2 hard links"):
        scratch.read_bytes("predictions.npy", 1 << 20)
    os.unlink(scratch.path / "predictions.npy")
    with pytest.raises(UnsafeScratchFile, match=r"other.npy is 2 KiB, over the 1 KiB cap"):
        scratch.read_bytes("other.npy", 1024)
    with pytest.raises(UnsafeScratchFile, match="not a plain file name"):
        scratch.read_bytes("../other.npy", 10)


def test_reads_follow_the_folder_not_its_path(tmp_path):
    scratch = ScratchDir.create(tmp_path / "exp")
    scratch.write_text("stdout.log", "real")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "stdout.log").write_text("elsewhere")
    os.rename(scratch.path, tmp_path / "moved")
    os.symlink(elsewhere, tmp_path / "exp")
    assert scratch.read_bytes("stdout.log", 100) == b"real"
    scratch.remove()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["elsewhere"]
    assert (elsewhere / "stdout.log").read_text() == "elsewhere"


def test_create_replaces_a_planted_link_and_refuses_to_open_one(tmp_path):
    target = tmp_path / "target"
    target.mkdir()
    (target / "keep").write_text("x")
    os.symlink(target, tmp_path / "exp")
    with pytest.raises(UnsafeScratchFile, match="cannot be opened safely"):
        ScratchDir(tmp_path / "exp")
    with ScratchDir.create(tmp_path / "exp") as s:
        s.write_text("pkg/mod.py", "pass\n")
        assert not (tmp_path / "exp").is_symlink()
        assert (tmp_path / "exp" / "pkg" / "mod.py").read_text() == "pass\n"
    assert (target / "keep").exists()


def test_write_never_follows_a_link(scratch, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("intact")
    os.symlink(victim, scratch.path / "train.py")
    with pytest.raises(OSError):
        scratch.write_text("train.py", "overwritten")
    assert victim.read_text() == "intact"


def test_format_size():
    assert format_size(512) == "512 B"
    assert format_size(16 << 20) == "16 MiB"
    assert format_size(int(3.2 * (1 << 30))) == "3.2 GiB"
