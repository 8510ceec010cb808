"""One big file over loopback HTTPS from nginx: robustfetch.fetch against curl -o, same run.

python benchmarks/big_file.py [--size-mib 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trustme

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nginx import Nginx

import robustfetch


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--out-dir",
        type=Path,
        default=None,
        help="where both tools write (default: a temporary folder; /dev/shm takes the disk out)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        digest = _make_file(root / "big.bin", args.size_mib << 20)
        ca = trustme.CA()
        ca_file = work / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        times: dict[str, list[float]] = {"curl -o": [], "robustfetch.fetch": []}
        with Nginx(root, ca) as server, robustfetch.Fetcher(ca_bundle=ca_file) as fetcher:
            url = server.url("big.bin")
            out = (args.out_dir or work) / "rf-bench-out.bin"
            for _ in range(args.rounds):
                # Alternate the tools so neither always runs on a warm cache.
                start = time.perf_counter()
                subprocess.run(
                    ["curl", "-sS", "--fail", "--cacert", str(ca_file), "-o", str(out), url],
                    check=True,
                )
                times["curl -o"].append(time.perf_counter() - start)
                out.unlink()
                start = time.perf_counter()
                result = fetcher.fetch(url, digest, dest=out)
                times["robustfetch.fetch"].append(time.perf_counter() - start)
                assert result.sha256 == digest
                out.unlink()
        curl = statistics.median(times["curl -o"])
        ours = statistics.median(times["robustfetch.fetch"])
        for tool, values in times.items():
            print(f"{tool:20} median {statistics.median(values):.3f} s  runs {values}")
        print(f"ratio fetch / curl -o: {ours / curl:.3f} ({args.size_mib} MiB, hash verified)")
    return 0


def _make_file(path: Path, size: int) -> str:
    digest = hashlib.sha256()
    block = os.urandom(1 << 20)
    with open(path, "wb") as handle:
        for index in range(size >> 20):
            chunk = block[index % 7 :] + block[: index % 7]
            handle.write(chunk)
            digest.update(chunk)
    return digest.hexdigest()


if __name__ == "__main__":
    sys.exit(main())
