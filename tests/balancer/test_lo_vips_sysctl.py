"""`prepare_interface` on a read-only /proc/sys (a container): values already in place are
fine, a wrong one is an error naming the key and the fix, a writable one is written."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from lbctl.balancer.lo_vips import prepare_interface


def _proc(tmp_path: Path, ignore: str, announce: str) -> Path:
    conf = tmp_path / "conf" / "eth0"
    conf.mkdir(parents=True)
    (conf / "arp_ignore").write_text(ignore + "\n")
    (conf / "arp_announce").write_text(announce + "\n")
    return tmp_path / "conf"


def _read_only(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    tried: list[Path] = []

    def refuse(self: Path, *_args: object, **_kwargs: object) -> int:
        tried.append(self)
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "write_text", refuse)
    return tried


def test_values_in_place_need_no_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _proc(tmp_path, "1", "2")
    tried = _read_only(monkeypatch)
    prepare_interface("eth0", proc)
    assert tried == []


def test_a_wrong_value_that_cannot_be_written_names_the_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    proc = _proc(tmp_path, "1", "0")
    tried = _read_only(monkeypatch)
    with pytest.raises(OSError, match=r"arp_announce is 0, must be 2 \(set it before"):
        prepare_interface("eth0", proc)
    assert tried == [proc / "eth0" / "arp_announce"]


def test_a_wrong_value_is_written(tmp_path: Path) -> None:
    proc = _proc(tmp_path, "0", "0")
    prepare_interface("eth0", proc)
    assert [(proc / "eth0" / k).read_text() for k in ("arp_ignore", "arp_announce")] == ["1", "2"]
