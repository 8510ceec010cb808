"""store/scratch.py: private temporary files (diagnose's throwaway certificate), always removed."""

from __future__ import annotations

import stat

import pytest

from robustfetch.store.scratch import scratch_files


def test_files_are_private_and_removed_on_exit() -> None:
    with scratch_files({"cert.pem": b"C", "key.pem": b"K"}, prefix="rf-test-") as files:
        assert files["cert.pem"].read_bytes() == b"C" and files["key.pem"].read_bytes() == b"K"
        folder = files["key.pem"].parent
        assert folder.name.startswith("rf-test-")
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700
        assert stat.S_IMODE(files["key.pem"].stat().st_mode) == 0o600
    assert not folder.exists()


def test_files_are_removed_when_the_body_raises() -> None:
    with pytest.raises(RuntimeError), scratch_files({"a": b"x"}) as files:
        folder = files["a"].parent
        raise RuntimeError("boom")
    assert not folder.exists()


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "../x", "a\0b"])
def test_names_must_be_plain(name: str) -> None:
    with pytest.raises(ValueError, match="plain name"), scratch_files({name: b""}):
        pass
