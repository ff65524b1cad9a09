import errno
import os

import pytest

from studio import fsutil
from studio.safety import UnsafeInputError, confine, is_loopback_host, safe_name


def test_atomic_write_replaces_content(tmp_path):
    target = tmp_path / "a" / "m.json"
    fsutil.atomic_write_json(target, {"x": 1})
    fsutil.atomic_write_json(target, {"x": 2, "名前": "テスト"})
    assert fsutil.read_json(target) == {"x": 2, "名前": "テスト"}
    assert [p.name for p in target.parent.iterdir()] == ["m.json"]


def test_failed_write_keeps_original_and_leaves_no_temp(tmp_path, monkeypatch):
    target = tmp_path / "m.json"
    fsutil.atomic_write_json(target, {"keep": True})

    def disk_full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        fsutil.atomic_write_json(target, {"keep": False})
    assert fsutil.read_json(target) == {"keep": True}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_read_json_default_when_missing(tmp_path):
    assert fsutil.read_json(tmp_path / "nope.json", default={}) == {}


@pytest.mark.parametrize("bad", ["", "..", ".", "../x", "a/b", "/etc", ".hidden", "x" * 81, "a\0b"])
def test_safe_name_rejects(bad):
    with pytest.raises(UnsafeInputError):
        safe_name(bad)


@pytest.mark.parametrize("good", ["sample-corpus", "v0001", "お嬢様データ", "run_1.2"])
def test_safe_name_accepts(good):
    assert safe_name(good) == good


def test_confine(tmp_path):
    inside = tmp_path / "root" / "m"
    inside.mkdir(parents=True)
    assert confine(inside, [tmp_path / "root"]) == inside.resolve()
    with pytest.raises(UnsafeInputError):
        confine(tmp_path / "root" / ".." / "elsewhere", [tmp_path / "root"])
    link = tmp_path / "root" / "link"
    link.symlink_to(tmp_path)
    with pytest.raises(UnsafeInputError):
        confine(link, [tmp_path / "root"])


@pytest.mark.parametrize(
    "host,loopback",
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),
        ("::1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("192.168.1.5", False),
        ("::", False),
    ],
)
def test_is_loopback_host(host, loopback):
    assert is_loopback_host(host) is loopback


def test_set_aside_keeps_every_damaged_copy(tmp_path):
    from studio.fsutil import set_aside

    path = tmp_path / "status.json"
    for n, text in enumerate(["{bad", "{worse", "{worst"]):
        path.write_text(text, encoding="utf-8")
        moved = set_aside(path)
        assert moved.name == ("status.json.damaged" if n == 0 else f"status.json.damaged-{n + 1}")
        assert moved.read_text(encoding="utf-8") == text and not path.exists()
    assert set_aside(path) is None  # gone already


def test_recent_keeps_the_last_used_values():
    from studio.memo import Recent

    recent = Recent(2)
    recent.put("a", 1)
    recent.put("b", 2)
    assert recent.get("a") == 1  # a is now the most recently used
    recent.put("c", 3)
    assert recent.get("b") is None and recent.get("a") == 1 and recent.get("c") == 3
    assert recent.get("missing", "default") == "default"
