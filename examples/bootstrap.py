"""A bootstrap script of the kind build systems ship, with robustfetch vendored beside it.

Layout, as a build system would copy it into its own tree::

    tools/bootstrap.py              this file
    tools/_vendor/robustfetch/      a copy of src/robustfetch (no other files needed)

It downloads the files listed in a manifest, one per line::

    <sha256> <name> <url> [<mirror base> ...]

into a folder, and reports on each. It needs nothing but the standard
library: robustfetch falls back to its stdlib transport when urllib3 is not
installed, and to the system's trust store when certifi is not.

    python tools/bootstrap.py MANIFEST DEST_DIR
"""

from __future__ import annotations

import sys
from pathlib import Path

# The vendored copy wins over anything installed: the script must behave the
# same on every machine it lands on.
sys.path.insert(0, str(Path(__file__).resolve().parent / "_vendor"))

import robustfetch


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    manifest, dest = Path(argv[0]), Path(argv[1])
    if not dest.is_dir():
        print(f"bootstrap: {dest} is not a folder", file=sys.stderr)
        return 2
    entries = []
    for number, line in enumerate(manifest.read_text().splitlines(), 1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) < 3:
            print(f"bootstrap: {manifest}:{number}: expected SHA256 NAME URL [MIRROR...]")
            return 2
        entries.append(fields)
    failed = 0
    with robustfetch.Fetcher(cache_dir=None) as fetcher:
        for sha256, name, url, *mirrors in entries:
            try:
                result = fetcher.fetch(url, sha256, dest=dest / name, mirrors=mirrors)
            except robustfetch.FetchError as error:
                failed += 1
                print(f"FAIL {name}\n{error}")
            except ValueError as error:
                failed += 1
                print(f"BAD  {name}: {error}")
            else:
                print(f"ok   {name} ({result.size} bytes from {result.url})")
    print(f"bootstrap: {len(entries) - failed} of {len(entries)} files ready")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
