"""The store as a whole, under any order of fetches, kills, corruption and clears (hypothesis)."""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path
from typing import Optional

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

import robustfetch
import robustfetch.store.locks as locks
from dummyserver import Server
from robustfetch.cli.main import main
from robustfetch.store.files import CRASH_VARIABLE

#: name -> (bytes, pinned): one small and one big pinned file, one unpinned.
FILES = {
    "small.bin": (os.urandom(200_000), True),
    "big.bin": (os.urandom(1_500_000), True),
    "free.bin": (os.urandom(300_000), False),
}
DIGESTS = {name: hashlib.sha256(data).hexdigest() for name, (data, _) in FILES.items()}
BY_DIGEST = {digest: FILES[name][0] for name, digest in DIGESTS.items()}
#: Where each file may be delivered: its own name, or another one in the same folder.
TARGETS = ["own", "other", "cache only"]

DRIVER = textwrap.dedent(
    """
    import sys
    import robustfetch
    import robustfetch.store.locks as locks
    locks.ORPHAN_AGE = 0  # sweep what killed runs left, however young
    url, digest, dest, cache, ca = sys.argv[1:]
    robustfetch.fetch(
        url, digest or None, dest=dest or None, cache_dir=cache, ca_bundle=ca,
        transport="stdlib", retries=0,
    )
    """
)


def temporaries(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if p.name.endswith((".robustfetch-part", ".tmp"))}


def make_machine(server: Server, ca_bundle: Path) -> type[RuleBasedStateMachine]:
    urls = {
        name: server.route(f"/{name}", body=data, etag=name) for name, (data, _) in FILES.items()
    }

    class Store(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            self.root = Path(tempfile.mkdtemp(prefix="robustfetch-machine-"))
            self.cache = self.root / "cache"
            self.dest = self.root / "dest"
            self.dest.mkdir()
            self.corrupted: set[str] = set()  # entries we broke, not yet repaired
            self.orphans: set[Path] = set()  # left by killed processes, not yet swept

        def teardown(self) -> None:
            shutil.rmtree(self.root, ignore_errors=True)

        def _dest(self, name: str, target: str) -> Optional[Path]:
            if target == "cache only":
                return None
            return self.dest / (name if target == "own" else f"other-{name}")

        @rule(name=st.sampled_from(sorted(FILES)), where=st.sampled_from(TARGETS))
        def fetch(self, name: str, where: str) -> None:
            data, pinned = FILES[name]
            digest = DIGESTS[name]
            result = robustfetch.fetch(
                urls[name],
                digest if pinned else None,
                dest=self._dest(name, where),
                cache_dir=self.cache,
                ca_bundle=ca_bundle,
                transport="stdlib",
                retries=0,
            )
            assert result.path.read_bytes() == data
            self.corrupted.discard(digest)
            assert not (self.cache / "partial" / digest).exists()
            assert not (self.cache / "partial" / f"{digest}.json").exists()

        @rule(
            name=st.sampled_from(sorted(FILES)),
            where=st.sampled_from(TARGETS),
            point=st.sampled_from(["write", "sync", "rename", "deliver", None]),
        )
        def other_process(self, name: str, where: str, point: Optional[str]) -> None:
            """A fetch in another process, killed (SIGKILL) at ``point`` if it gets there."""
            _, pinned = FILES[name]
            dest = self._dest(name, where)
            env = {k: v for k, v in os.environ.items() if k != CRASH_VARIABLE}
            if point is not None:
                env[CRASH_VARIABLE] = point
            args = [urls[name], DIGESTS[name] if pinned else "", str(dest or "")]
            run = subprocess.run(
                [sys.executable, "-c", DRIVER, *args, str(self.cache), str(ca_bundle)],
                env=env,
                timeout=60,
                capture_output=True,
            )
            killed = run.returncode == -9
            assert killed or run.returncode == 0, run.stderr.decode()
            if killed:
                self.orphans |= temporaries(self.root)
            else:
                self.corrupted.discard(DIGESTS[name])
                if dest is not None:  # a run that ends swept what killed ones left there
                    assert not temporaries(self.dest)
                    self.orphans = {p for p in self.orphans if p.parent != self.dest}

        @rule(name=st.sampled_from(sorted(FILES)), partial=st.booleans())
        def corrupt(self, name: str, partial: bool) -> None:
            """Flip bytes in a cache entry, or in a partial download kept for resuming."""
            digest = DIGESTS[name]
            folder = self.cache / ("partial" if partial else f"sha256/{digest[:2]}")
            path = folder / digest
            if not path.is_file() or path.stat().st_size == 0:
                return
            path.chmod(0o644)
            with open(path, "r+b") as handle:
                if partial:  # no longer a prefix of the file
                    first = handle.read(1)
                    handle.seek(0)
                    handle.write(bytes([first[0] ^ 0xFF]))
                else:  # cut short, however often it is done
                    handle.truncate(path.stat().st_size // 2)
                    self.corrupted.add(digest)

        @rule()
        def clear(self) -> None:
            assert main(["cache", "--cache-dir", str(self.cache), "clear"]) == 0
            self.corrupted.clear()
            self.orphans = {p for p in self.orphans if self.cache not in p.parents}
            assert not temporaries(self.cache)

        @invariant()
        def only_verified_files(self) -> None:
            for path in self.dest.iterdir():
                if path in self.orphans:
                    continue
                name = path.name.replace("other-", "")
                assert path.read_bytes() == FILES[name][0], path
            for path in self.cache.glob("sha256/??/*"):
                if path in self.orphans or path.name in self.corrupted:
                    continue
                assert hashlib.sha256(path.read_bytes()).hexdigest() == path.name, path
                assert stat.S_IMODE(path.stat().st_mode) == 0o444, path

        @invariant()
        def no_temporary_file_outlives_its_operation(self) -> None:
            assert temporaries(self.root) <= self.orphans
            for path in self.cache.glob("partial/*"):
                assert path.name.split(".")[0] in BY_DIGEST, path

    return Store


def test_the_store_keeps_only_verified_files(
    https_server: Server, ca_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What killed runs leave is swept however young (outside tests: after ORPHAN_AGE s).
    monkeypatch.setattr(locks, "ORPHAN_AGE", 0)
    machine = make_machine(https_server, ca_bundle)
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=15,
            stateful_step_count=8,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
