from __future__ import annotations

import re
from pathlib import Path

import pytest

from worker.domain.errors import PermanentError
from worker.domain.storage import LocalStorage

KEY = "upload_files/tenant-1/3f6c.pdf"


def test_saves_and_loads_a_file_creating_its_folders(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "storage")

    storage.save(KEY, b"%PDF-1.4 hello")

    assert storage.load(KEY) == b"%PDF-1.4 hello"
    assert (tmp_path / "storage" / KEY).read_bytes() == b"%PDF-1.4 hello"
    assert storage.exists(KEY)


def test_save_overwrites_and_leaves_no_temporary_files(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.save(KEY, b"first")

    storage.save(KEY, b"second")

    assert storage.load(KEY) == b"second"
    assert [p.name for p in (tmp_path / KEY).parent.iterdir()] == ["3f6c.pdf"]


def test_loading_a_missing_file_is_a_permanent_error_naming_the_key(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    with pytest.raises(PermanentError, match=re.escape(f"file {KEY} not found in storage")) as info:
        storage.load(KEY)

    assert isinstance(info.value.__cause__, FileNotFoundError)


def test_missing_files_do_not_exist_and_delete_quietly(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    assert not storage.exists(KEY)
    storage.delete(KEY)


def test_delete_removes_the_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.save(KEY, b"data")

    storage.delete(KEY)

    assert not storage.exists(KEY)
    assert not (tmp_path / KEY).exists()


def test_a_folder_is_not_a_file(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.save(KEY, b"data")

    assert not storage.exists("upload_files/tenant-1")
    with pytest.raises(PermanentError, match="cannot read upload_files/tenant-1"):
        storage.load("upload_files/tenant-1")


@pytest.mark.parametrize(
    "key",
    [
        "../outside.txt",
        "upload_files/../../outside.txt",
        "/etc/passwd",
        "..",
        "",
        ".",
        "C:\\Windows\\win.ini",
        "upload_files\\..\\..\\outside.txt",
    ],
)
def test_keys_that_escape_the_root_are_refused(tmp_path: Path, key: str) -> None:
    storage = LocalStorage(tmp_path / "root")

    for operation in (storage.load, storage.delete, storage.exists):
        with pytest.raises(PermanentError, match="escapes the storage root") as info:
            operation(key)
        assert repr(key) in str(info.value)
    with pytest.raises(PermanentError, match="escapes the storage root"):
        storage.save(key, b"x")
    assert not (tmp_path / "outside.txt").exists()


def test_symlinks_out_of_the_root_are_refused(tmp_path: Path) -> None:
    (tmp_path / "secret.txt").write_bytes(b"secret")
    root = tmp_path / "root"
    root.mkdir()
    (root / "link").symlink_to(tmp_path)
    storage = LocalStorage(root)

    with pytest.raises(PermanentError, match="escapes the storage root"):
        storage.load("link/secret.txt")


def test_a_key_inside_the_root_may_contain_dots(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)

    storage.save("upload_files/./t/..hidden..txt", b"ok")

    assert storage.load("upload_files/t/..hidden..txt") == b"ok"
