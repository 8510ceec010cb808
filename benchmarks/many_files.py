"""Many small files from nginx over loopback HTTPS: fetch_many against a loop of single fetches.

    python benchmarks/many_files.py [--files 500] [--size-kib 16] [--workers 8]

Prints both times, their ratio, and the TCP connections each approach used
(counted by nginx).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
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
    parser.add_argument("--files", type=int, default=500)
    parser.add_argument("--size-kib", type=int, default=16)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rf-bench-") as tmp:
        work = Path(tmp)
        root = work / "www"
        root.mkdir()
        digests = {}
        for index in range(args.files):
            body = os.urandom(args.size_kib << 10)
            (root / f"f{index:04}.bin").write_bytes(body)
            digests[f"f{index:04}.bin"] = hashlib.sha256(body).hexdigest()
        ca = trustme.CA()
        ca_file = work / "ca.pem"
        ca.cert_pem.write_to_path(str(ca_file))
        options = {"ca_bundle": ca_file, "cache_dir": None}
        out = work / "out"
        times, connections = {}, {}
        for approach in ("sequential fetch()", f"fetch_many(workers={args.workers})"):
            shutil.rmtree(out, ignore_errors=True)
            out.mkdir()
            with Nginx(root, ca, log_requests=True) as server:
                requests = [
                    robustfetch.Request(server.url(name), digest, dest=out)
                    for name, digest in digests.items()
                ]
                start = time.perf_counter()
                if approach.startswith("sequential"):
                    for request in requests:
                        robustfetch.fetch(request.url, request.sha256, dest=out, **options)
                else:
                    results = robustfetch.fetch_many(requests, workers=args.workers, **options)
                    assert all(isinstance(r, robustfetch.FetchResult) for r in results)
                times[approach] = time.perf_counter() - start
                connections[approach] = server.connections()
            assert len(os.listdir(out)) == args.files
        for approach, seconds in times.items():
            print(f"{approach:24} {seconds:.3f} s  {connections[approach]} TCP connections")
        sequential, parallel = times.values()
        print(
            f"{args.files} files of {args.size_kib} KiB: fetch_many is "
            f"{sequential / parallel:.1f} x faster than the loop"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
