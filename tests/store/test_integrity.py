"""Only verified bytes: racing writers, delivered copies, stray files, links, long names, FIFOs."""

from __future__ import annotations

import hashlib
import os
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any, Callable

import pytest

import robustfetch
from dummyserver import Server
from robustfetch import FetchError, Reason
from robustfetch.cli.main import main

DATA = os.urandom(300_000)
DIGEST = hashlib.sha256(DATA).hexdigest()

needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@pytest.fixture
def cached(opts: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    return {**opts, "cache_dir": tmp_path / "cache"}


def entry(cache: Path, digest: str = DIGEST) -> Path:
    return cache / "sha256" / digest[:2] / digest


def tree(folder: Path) -> list[str]:
    """Every file under ``folder``, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if not p.is_dir())


def strays(folder: Path) -> list[str]:
    return [name for name in tree(folder) if "robustfetch-part" in name or name.endswith(".tmp")]


# -- 1. two writers never share a staging file ---------------------------------------------

DRIVER = textwrap.dedent(
    """
    import sys
    url, digest, dest, cache, ca, backend = sys.argv[1:]
    if backend != "fcntl":
        sys.modules["fcntl"] = None  # as on Windows: the fallback lock
    import robustfetch
    result = robustfetch.fetch(url, digest, dest=dest, cache_dir=cache, ca_bundle=ca)
    print(result.size)
    """
)


@pytest.fixture(params=["fcntl", "file"])
def lock_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The lock in use: flock, or the lock files used where fcntl is missing."""
    if request.param != "fcntl":
        monkeypatch.setitem(sys.modules, "fcntl", None)  # type: ignore[arg-type]
    return str(request.param)


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 20.0) -> None:
    give_up = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > give_up:
            pytest.fail(f"never happened: {what}")
        time.sleep(0.02)


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def test_a_process_that_cannot_get_the_lock_never_touches_the_other_s_partial(
    https_server: Server,
    ca_bundle: Path,
    opts: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
    lock_backend: str,
) -> None:
    data = os.urandom(8 << 20)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    url = https_server.route("/f.bin", body=data, trickle=(256 << 10, 0.05))
    first = subprocess.Popen(
        [
            sys.executable,
            "-c",
            DRIVER,
            url,
            digest,
            str(dest_dir / "a.bin"),
            str(cache),
            str(ca_bundle),
            lock_backend,
        ],
        stdout=subprocess.PIPE,
    )
    try:
        wait_for(lambda: size_of(cache / "partial" / digest) >= 1 << 20, "A got going")
        try:
            options = {**opts, "cache_dir": cache, "deadline": 1}
            second = robustfetch.fetch(url, digest, dest=dest_dir / "b.bin", **options)
        except FetchError as error:
            assert {a.reason for a in error.attempts} == {Reason.TIMEOUT}
            assert "lock" in str(error.attempts[0].detail)
            assert not (dest_dir / "b.bin").exists()
        else:  # downloaded into staging of its own
            assert second.path.read_bytes() == data
        out = first.communicate(timeout=60)[0]
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode == 0 and out.strip() == str(len(data)).encode()
    assert (dest_dir / "a.bin").read_bytes() == data
    assert entry(cache, digest).read_bytes() == data
    assert strays(cache) == [] and strays(dest_dir) == []


def test_threads_of_one_process_exclude_each_other(
    https_server: Server, cached: dict[str, Any], dest_dir: Path, lock_backend: str
) -> None:
    data = os.urandom(4 << 20)
    digest = hashlib.sha256(data).hexdigest()
    url = https_server.route("/f.bin", body=data, trickle=(128 << 10, 0.05))
    results: list[Any] = []
    first = threading.Thread(
        target=lambda: results.append(robustfetch.fetch(url, digest, dest=dest_dir, **cached))
    )
    first.start()
    partial = cached["cache_dir"] / "partial" / digest
    wait_for(lambda: size_of(partial) >= 256 << 10, "the first thread got going")
    with pytest.raises(FetchError) as info:
        robustfetch.fetch(url, digest, dest=dest_dir / "b.bin", deadline=0.5, **cached)
    assert {a.reason for a in info.value.attempts} == {Reason.TIMEOUT}
    first.join(60)
    assert results and results[0].path.read_bytes() == data
    assert entry(cached["cache_dir"], digest).read_bytes() == data
    assert https_server.hits("/f.bin") == 1


def test_the_lock_module_excludes_and_releases(tmp_path: Path, lock_backend: str) -> None:
    from robustfetch.store.locks import LockTimeout, hold

    path = tmp_path / "x.lock"
    with hold(path, 0):
        with pytest.raises(LockTimeout), hold(path, 0.1):
            pass
        other: list[BaseException] = []

        def contend() -> None:
            try:
                with hold(path, 0.1):
                    pass
            except BaseException as exc:
                other.append(exc)

        thread = threading.Thread(target=contend)
        thread.start()
        thread.join(10)
        assert [type(e) for e in other] == [LockTimeout]
    with hold(path, 0):
        pass


def test_a_lock_file_left_by_a_dead_process_is_taken_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from robustfetch.store.locks import hold

    monkeypatch.setitem(sys.modules, "fcntl", None)  # type: ignore[arg-type]
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    path = tmp_path / "x.lock"
    (tmp_path / "x.lock.owner").write_text(f"{dead.pid}\n")
    with hold(path, 1):
        pass
    assert not (tmp_path / "x.lock.owner").exists()


class _FakeMsvcrt:
    """msvcrt.locking's contract (one byte, LK_NBLCK raises when held), built on flock."""

    LK_NBLCK, LK_UNLCK = 2, 0

    def __init__(self) -> None:
        import fcntl

        self._fcntl = fcntl

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1 and os.lseek(fd, 0, os.SEEK_CUR) == 0
        if mode == self.LK_UNLCK:
            self._fcntl.flock(fd, self._fcntl.LOCK_UN)
            return
        try:
            self._fcntl.flock(fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB)
        except BlockingIOError:
            raise PermissionError(13, "Permission denied") from None


@pytest.mark.skipif(sys.platform == "win32", reason="fakes msvcrt with fcntl")
def test_windows_locks_use_msvcrt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from robustfetch.store.locks import LockTimeout, hold

    fake = _FakeMsvcrt()
    monkeypatch.setitem(sys.modules, "fcntl", None)  # type: ignore[arg-type]
    monkeypatch.setitem(sys.modules, "msvcrt", fake)  # type: ignore[arg-type]
    path = tmp_path / "x.lock"
    with hold(path, 0), pytest.raises(LockTimeout), hold(path, 0.1):
        pass
    with hold(path, 0):
        pass
    assert not (tmp_path / "x.lock.owner").exists()  # the real lock, not the fallback


# -- 2. a delivered file is its own file ----------------------------------------------------


def test_delivered_copies_share_nothing(
    https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    first = robustfetch.fetch(url, DIGEST, dest=dest_dir / "a.bin", **cached)
    second = robustfetch.fetch(url, DIGEST, dest=dest_dir / "b.bin", **cached)
    assert second.from_cache
    stored = entry(cached["cache_dir"])
    inodes = {os.stat(p).st_ino for p in (first.path, second.path, stored)}
    assert len(inodes) == 3
    with open(first.path, "r+b") as handle:
        handle.write(b"changed")
    os.chmod(second.path, 0o600)
    assert second.path.read_bytes() == DATA and stored.read_bytes() == DATA
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o444  # entries are read-only
    assert stat.S_IMODE(os.stat(first.path).st_mode) & 0o200  # delivered files are not


def test_unpinned_download_and_its_cache_entry_share_nothing(
    https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, dest=dest_dir, **cached)
    stored = entry(cached["cache_dir"])
    assert os.stat(result.path).st_ino != os.stat(stored).st_ino
    result.path.write_bytes(b"mine now")
    assert stored.read_bytes() == DATA
    assert stat.S_IMODE(os.stat(stored).st_mode) == 0o444


@pytest.mark.parametrize("kernel_copy", [True, False])
def test_deliver_copies_when_no_reflink_is_offered(
    kernel_copy: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from robustfetch.store import files

    source = tmp_path / "source"
    source.write_bytes(DATA * 5)
    monkeypatch.setattr(files, "_reflink", lambda src, dst: False)
    if not kernel_copy:
        monkeypatch.delattr(os, "copy_file_range", raising=False)
    files.deliver(source, tmp_path / "copy", 0o444)
    assert (tmp_path / "copy").read_bytes() == DATA * 5
    assert stat.S_IMODE(os.stat(tmp_path / "copy").st_mode) == 0o444
    assert sorted(os.listdir(tmp_path)) == ["copy", "source"]


# -- 3. no stray files ----------------------------------------------------------------------


def test_the_same_file_twice_leaves_nothing_behind(
    https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    for _ in range(3):
        robustfetch.fetch(url, DIGEST, dest=dest_dir / "f.bin", **cached)
    for name in ("one.bin", "two.bin", "one.bin"):
        robustfetch.fetch(url, DIGEST, dest=dest_dir / name, **cached)
    assert sorted(os.listdir(dest_dir)) == ["f.bin", "one.bin", "two.bin"]
    assert all((dest_dir / n).read_bytes() == DATA for n in os.listdir(dest_dir))
    assert strays(cached["cache_dir"]) == []


def test_unpinned_twice_leaves_nothing_behind(
    https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    url = https_server.route("/f.bin", body=DATA)
    for _ in range(2):
        robustfetch.fetch(url, dest=dest_dir, **cached)
        robustfetch.fetch(url, **cached)
    assert os.listdir(dest_dir) == ["f.bin"]
    assert strays(cached["cache_dir"]) == []


# -- 4. symlinks are not followed -----------------------------------------------------------


@pytest.mark.parametrize("planted", ["symlink", "hardlink"])
def test_a_link_at_the_partial_path_is_not_followed(
    planted: str,
    https_server: Server,
    cached: dict[str, Any],
    dest_dir: Path,
    tmp_path: Path,
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(DATA[:1000])  # a prefix: today it would be read and truncated
    partial = cached["cache_dir"] / "partial" / DIGEST
    partial.parent.mkdir(parents=True)
    if planted == "symlink":
        partial.symlink_to(victim)
    else:
        os.link(victim, partial)
    url = https_server.route("/f.bin", body=DATA, etag="v1")
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **cached)
    assert result.path.read_bytes() == DATA
    assert victim.read_bytes() == DATA[:1000]
    assert os.listdir(partial.parent) == []


def test_a_symlink_at_the_validator_file_is_not_followed(
    https_server: Server, cached: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious")
    partial = cached["cache_dir"] / "partial" / DIGEST
    partial.parent.mkdir(parents=True)
    Path(f"{partial}.json").symlink_to(victim)
    url = https_server.route("/f.bin", body=DATA, etag="v1", stall_after=100_000)
    with pytest.raises(FetchError):
        robustfetch.fetch(url, DIGEST, dest=dest_dir, **cached)
    assert victim.read_bytes() == b"precious"
    assert not Path(f"{partial}.json").is_symlink()


def test_a_symlink_at_a_cache_entry_is_not_trusted(
    https_server: Server, cached: dict[str, Any], dest_dir: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(DATA)
    stored = entry(cached["cache_dir"])
    stored.parent.mkdir(parents=True)
    stored.symlink_to(victim)
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST, dest=dest_dir, **cached)
    assert result.path.read_bytes() == DATA
    assert not stored.is_symlink() and victim.read_bytes() == DATA


# -- 10. long names -------------------------------------------------------------------------


@pytest.mark.parametrize("pinned", [True, False])
def test_a_255_byte_name_of_cjk_characters(
    pinned: bool, https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    name = "漢" * 85  # 255 bytes in UTF-8
    assert len(name.encode()) == 255
    url = https_server.route("/f.bin", body=DATA)
    result = robustfetch.fetch(url, DIGEST if pinned else None, dest=dest_dir / name, **cached)
    assert result.path.read_bytes() == DATA
    robustfetch.fetch(url, DIGEST, dest=dest_dir / name, **cached)  # from the cache
    assert os.listdir(dest_dir) == [name]


def test_temporary_names_are_cut_by_bytes_keeping_utf8() -> None:
    from robustfetch.store.staging import temporary_name

    for name in ("漢" * 85, "a" + "😀" * 63, "x" * 255, "short"):
        made = temporary_name(name)
        assert len(os.fsencode(made)) <= 255
        made.encode("utf-8")  # no lone surrogates
        assert made.startswith(".") and made.endswith(".robustfetch-part")


# -- 11. every wait is bounded --------------------------------------------------------------


def finishes(action: Callable[[], object], fifo: Path) -> list[Any]:
    """Run ``action`` on a thread; fail (after unblocking it) if it hangs on ``fifo``."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(action())
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(10)
    if thread.is_alive():
        fd = os.open(fifo, os.O_RDWR | os.O_NONBLOCK)  # wakes a reader or writer up
        os.close(fd)
        thread.join(10)
        pytest.fail(f"hung on the FIFO at {fifo}")
    return outcome


@needs_fifo
@pytest.mark.parametrize("where", ["partial", "validator", "entry", "dest", "lock"])
def test_a_fifo_where_a_file_is_expected_does_not_hang(
    where: str, https_server: Server, cached: dict[str, Any], dest_dir: Path
) -> None:
    cache = cached["cache_dir"]
    paths = {
        "partial": cache / "partial" / DIGEST,
        "validator": cache / "partial" / f"{DIGEST}.json",
        "entry": entry(cache),
        "dest": dest_dir / "f.bin",
        "lock": cache / "locks" / f"{DIGEST}.lock",
    }
    fifo = paths[where]
    fifo.parent.mkdir(parents=True, exist_ok=True)
    if where == "validator":
        paths["partial"].write_bytes(DATA[:1000])
    os.mkfifo(fifo)
    url = https_server.route("/f.bin", body=DATA)
    (outcome,) = finishes(lambda: robustfetch.fetch(url, DIGEST, dest=dest_dir, **cached), fifo)
    if isinstance(outcome, FetchError):  # refusing is fine; hanging or crashing is not
        assert where == "lock" and outcome.attempts[0].reason is Reason.IO_ERROR
        return
    assert not isinstance(outcome, BaseException), outcome
    assert outcome.path.read_bytes() == DATA


@needs_fifo
def test_a_fifo_in_the_cache_does_not_hang_the_cache_commands(cached: dict[str, Any]) -> None:
    fifo = entry(cached["cache_dir"])
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    args = ["cache", "--cache-dir", str(cached["cache_dir"])]
    assert finishes(lambda: main([*args, "verify"]), fifo) == [1]
    assert not fifo.exists()


@pytest.mark.skipif(sys.platform == "win32", reason="flock")
def test_the_health_lock_wait_is_bounded(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import fcntl

    from robustfetch.store import health

    monkeypatch.setattr(health, "LOCK_WAIT", 0.2)
    store = health.HealthStore(tmp_path)
    with open(tmp_path / "mirror-health.json.lock", "a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        outcome = finishes(lambda: store.record({"a.test": True}, {}), held.name)  # type: ignore[arg-type]
    assert outcome == [None]
    assert not (tmp_path / "mirror-health.json").exists()


def test_cache_clear_spares_a_partial_being_written(
    https_server: Server, ca_bundle: Path, dest_dir: Path, tmp_path: Path
) -> None:
    data = os.urandom(4 << 20)
    digest = hashlib.sha256(data).hexdigest()
    cache = tmp_path / "cache"
    url = https_server.route("/f.bin", body=data, trickle=(128 << 10, 0.05))
    args = [url, digest, str(dest_dir / "a.bin"), str(cache), str(ca_bundle), "fcntl"]
    writer = subprocess.Popen([sys.executable, "-c", DRIVER, *args], stdout=subprocess.PIPE)
    try:
        wait_for(lambda: size_of(cache / "partial" / digest) >= 256 << 10, "the writer got going")
        assert main(["cache", "--cache-dir", str(cache), "clear"]) == 0
        assert (cache / "partial" / digest).exists()
        writer.communicate(timeout=60)
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert writer.returncode == 0
    assert (dest_dir / "a.bin").read_bytes() == data
    assert main(["cache", "--cache-dir", str(cache), "clear"]) == 0
    assert tree(cache) == []


# -- issue 10, item 6: the validator file is written when it changes ------------------------


def test_describe_writes_the_validator_file_only_when_it_changes(tmp_path: Path) -> None:
    from robustfetch.store.staging import Staging

    with Staging.resumable(tmp_path / DIGEST, {"sha256": DIGEST}) as staging:
        staging.restart()
        staging.write(b"abc")
        meta = tmp_path / f"{DIGEST}.json"
        staging.describe("https://a.test/f", '"v1"')
        os.utime(meta, (1, 1))
        staging.describe("https://a.test/f", '"v1"')
        assert meta.stat().st_mtime == 1
        staging.describe("https://a.test/f", '"v2"')
        assert meta.stat().st_mtime != 1
        assert "v2" in meta.read_text()
