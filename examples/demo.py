"""robustfetch's main job on loopback: one file, fetched past four broken sources.

Starts HTTPS servers on 127.0.0.1 (certificates from trustme), then asks
robustfetch for one file whose sha256 is pinned, listing five places in order:

1. a dead host (nothing listens there),
2. a server answering 404,
3. a server holding a corrupted copy,
4. a mirror that sends half the file and then stalls,
5. a good mirror.

It prints what happened at each source and where the verified file landed.
Run from a clone:  python examples/demo.py
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # dummyserver/ from the clone

import robustfetch
from dummyserver import Certs, Server, closed_port


def main() -> int:
    payload = os.urandom(2 << 20)
    digest = hashlib.sha256(payload).hexdigest()
    corrupted = bytearray(payload)
    corrupted[1000] ^= 0xFF
    with contextlib.ExitStack() as stack:
        certs = stack.enter_context(Certs())
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="rf-demo-")))
        site = stack.enter_context(Server(certs.good_context()))
        mirror = stack.enter_context(Server(certs.good_context()))
        sources = [
            f"https://127.0.0.1:{closed_port()}/dist/tool-1.0.tar.gz",
            site.route("/missing/tool-1.0.tar.gz", status=404, body=b"not here"),
            site.route("/corrupt/tool-1.0.tar.gz", body=bytes(corrupted)),
            mirror.route("/stalled/tool-1.0.tar.gz", body=payload, stall_after=1 << 20),
            mirror.route("/good/tool-1.0.tar.gz", body=payload),
        ]
        print(f"fetching tool-1.0.tar.gz (sha256 {digest[:16]}...) from {len(sources)} places")
        result = robustfetch.fetch(
            sources[0],
            sha256=digest,
            fallbacks=sources[1:],
            dest=folder,
            ca_bundle=certs.ca_bundle,
            stall_timeout=1.0,
            connect_timeout=2.0,
            retries=0,
        )
        for number, attempt in enumerate(result.attempts, 1):
            outcome = "ok" if attempt.reason is None else attempt.reason.value
            print(f"  {number}. {outcome:13} {attempt.url}")
            if attempt.reason is not None:
                print(f"     {attempt.detail}")
        ok = Path(result.path).read_bytes() == payload
        print(f"saved {result.path.name}: {result.size} bytes, sha256 verified: {ok}")
        leftovers = sorted(p.name for p in folder.iterdir() if p != result.path)
        print(f"other files in the destination folder: {leftovers or 'none'}")
        return 0 if ok and not leftovers else 1


if __name__ == "__main__":
    sys.exit(main())
