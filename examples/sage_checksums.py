"""Fetch SageMath's upstream tarballs, each one checked against its checksums.ini.

SageMath describes every third-party package in a folder ``build/pkgs/<name>/``:

- ``checksums.ini`` holds ``key=value`` lines: ``tarball=six-VERSION.tar.gz`` (the file
  name), ``sha256=<hex>`` and usually ``upstream_url=https://.../six-VERSION.tar.gz``;
- ``package-version.txt`` holds the version. A trailing ``.pN`` is Sage's own patch level,
  not part of the upstream version, and is dropped.

As in Sage's ``sage_bootstrap``, ``VERSION`` (and ``VERSION_MAJOR``, ``VERSION_MINOR``,
``VERSION_MICRO``, each also spelt ``${VERSION}``...) in ``tarball=`` and ``upstream_url=``
is replaced by that version.

For each package this asks robustfetch for the tarball: from ``upstream_url`` first (an
``ftp://`` one too, handed over as it is), then from every mirror, and writes
``DEST/<tarball>`` only once its sha256 matched. The tarball name goes to robustfetch as
``filename=``, so mirrors are asked for Sage's name even when the upstream URL ends in
another (a GitHub ``archive/v1.0.tar.gz``). A mirror is a base URL or a local folder:
``${SPKG}`` in it is replaced by the package name, as ``sage_bootstrap``'s download does
(Sage's mirrors keep each package in ``spkg/upstream/<name>/``; for a package sharing
another's ``checksums.ini`` that package's folder is tried too), ``{filename}`` by the
tarball name, otherwise ``/<tarball>`` is appended. ``--mirror-list FILE`` reads Sage's
mirror list format (one base URL per line, ``#`` comments). Without either, the bases in
``$ROBUSTFETCH_MIRRORS`` are used the same way. A package without ``upstream_url`` is
fetched from the mirrors alone; so is one whose upstream scheme this robustfetch cannot
fetch. ``$ROBUSTFETCH_CA_BUNDLE`` chooses the CAs to trust.

Run from a clone, with robustfetch installed::

    python examples/sage_checksums.py SAGE_ROOT/build/pkgs [NAME ...] --dest upstream \\
        --mirror 'https://mirrors.mit.edu/sage/spkg/upstream/${SPKG}'

Without NAME, every package folder whose ``checksums.ini`` has a ``sha256=`` line is
fetched, in alphabetical order. One report line per package, in that order::

    ok   six-1.16.0.tar.gz  34041 bytes from https://files.pythonhosted.org/...
    FAIL pari-2.15.5.tar.gz
         could not fetch pari-2.15.5.tar.gz: 2 sources failed
           - https://pari.math.u-bordeaux.fr/...: not_found: HTTP 404: ...
           - https://mirror.example/...: hash_mismatch: sha256 mismatch: ...
    BAD  gap: checksums.ini: sha256='abc' is not 64 hex digits

Exit status: 0 every tarball was fetched; 1 some download failed; 2 bad usage, or some
package folder could not be used (no such folder, no or malformed ``checksums.ini``, a
``VERSION`` without ``package-version.txt``, neither ``upstream_url`` nor a mirror). The
other packages are still fetched and reported, but 2 wins over 1: the files need fixing
before a second run can help.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import quote

import robustfetch

EXIT_OK, EXIT_FAILED, EXIT_BAD = 0, 1, 2

# sage_bootstrap reads checksums.ini with this pattern, matched at the start of each line.
_ASSIGNMENT = re.compile(r"(?P<key>[A-Za-z0-9_]*)=(?P<value>.*)")
_PATCHLEVEL = re.compile(r"(?P<version>.+)\.p[0-9]+")
_SHA256 = re.compile(r"[0-9A-Fa-f]{64}")
# VERSION is a prefix of the others, so it is substituted last.
_VERSION_PARTS = (("VERSION_MAJOR", 0), ("VERSION_MINOR", 1), ("VERSION_MICRO", 2))


class BadPackage(Exception):
    """A package folder that cannot be turned into a download."""


@dataclass(frozen=True)
class Package:
    """One tarball to fetch, read from ``build/pkgs/<name>/``."""

    name: str
    tarball: str
    sha256: str
    upstream_url: Optional[str]
    spkg: str  # the package folder checksums.ini really lives in (Sage symlinks some)


def read_checksums(path: Path) -> dict[str, str]:
    """The ``key=value`` lines of ``checksums.ini``; other lines are ignored, as Sage does."""
    values: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        match = _ASSIGNMENT.match(line)
        if match is not None:
            values[match["key"]] = match["value"].strip()
    return values


def upstream_version(folder: Path) -> Optional[str]:
    """``package-version.txt`` without Sage's ``.pN`` patch level; None if absent or empty."""
    try:
        text = (folder / "package-version.txt").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
    match = _PATCHLEVEL.fullmatch(text)
    return (match["version"] if match else text) or None


def substitute(pattern: str, version: Optional[str], key: str) -> str:
    """``pattern`` with ``VERSION``, ``${VERSION}``, ``VERSION_MAJOR``... replaced."""
    if "VERSION" not in pattern:
        return pattern
    if version is None:
        raise BadPackage(f"{key}= uses VERSION but package-version.txt is missing or empty")
    parts = version.split(".")
    for variable, index in _VERSION_PARTS:
        if variable in pattern:
            if index >= len(parts):
                raise BadPackage(f"{key}= uses {variable} but version {version!r} has no such part")
            pattern = pattern.replace("${" + variable + "}", parts[index])
            pattern = pattern.replace(variable, parts[index])
    return pattern.replace("${VERSION}", version).replace("VERSION", version)


def load_package(folder: Path) -> Package:
    """Read one package folder; every problem is a :class:`BadPackage` saying what to fix."""
    ini = folder / "checksums.ini"
    if not folder.is_dir():
        raise BadPackage(f"no package folder {str(folder)!r}")
    try:
        values = read_checksums(ini)
    except FileNotFoundError:
        raise BadPackage("no checksums.ini") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadPackage(f"cannot read checksums.ini: {exc}") from None
    pattern = values.get("tarball")
    if not pattern:
        raise BadPackage("checksums.ini has no tarball= line")
    sha256 = values.get("sha256")
    if not sha256:
        raise BadPackage("checksums.ini has no sha256= line: nothing to verify against")
    if not _SHA256.fullmatch(sha256):
        raise BadPackage(f"checksums.ini: sha256={sha256!r} is not 64 hex digits")
    version = upstream_version(folder)
    tarball = substitute(pattern, version, "tarball")
    if tarball in ("", ".", "..") or "/" in tarball or "\\" in tarball:
        raise BadPackage(f"tarball={tarball!r} is not a plain file name")
    url = values.get("upstream_url")
    return Package(
        name=folder.name,
        tarball=tarball,
        sha256=sha256.lower(),
        upstream_url=substitute(url, version, "upstream_url") if url else None,
        spkg=ini.resolve().parent.name,
    )


def has_sha256(folder: Path) -> bool:
    """Whether ``folder`` is picked when no NAME is given (unreadable files are, to be reported)."""
    ini = folder / "checksums.ini"
    if not ini.is_file():
        return False
    try:
        return "sha256" in read_checksums(ini)
    except (OSError, UnicodeDecodeError):
        return True


def mirror_bases(bases: Sequence[str], package: Package) -> list[str]:
    """``bases`` with ``${SPKG}`` filled in: the package's name, then the folder it shares."""
    names = [package.name] + ([package.spkg] if package.spkg != package.name else [])
    filled: list[str] = []
    for base in bases:
        for name in names if "${SPKG}" in base else names[:1]:
            candidate = base.replace("${SPKG}", name)
            if candidate not in filled:
                filled.append(candidate)
    return filled


def mirror_url(base: str, package: Package) -> str:
    """Where the mirror ``base`` (``${SPKG}`` already filled in) keeps ``package``'s tarball."""
    if "://" not in base:  # a local folder, as robustfetch's mirrors= accepts
        folder = Path(base.replace("{filename}", package.tarball)).expanduser().absolute()
        return (folder if "{filename}" in base else folder / package.tarball).as_uri()
    name = quote(package.tarball)
    if "{filename}" in base:
        return base.replace("{filename}", name)
    return f"{base.rstrip('/')}/{name}"


def read_mirror_list(path: Path) -> list[str]:
    """Sage's mirror list: one base URL per line; blank lines and ``#`` comments skipped."""
    bases = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            bases.append(line)
    return bases


def fetch_package(
    fetcher: robustfetch.Fetcher, package: Package, mirrors: Sequence[str], dest: Path
) -> Union[robustfetch.FetchResult, robustfetch.FetchError]:
    bases = mirror_bases(mirrors, package)
    upstream = package.upstream_url
    if not upstream and not bases:
        raise BadPackage("no upstream_url= in checksums.ini and no mirror to look in")
    target = dest / package.tarball
    try:
        if upstream:
            try:
                return fetcher.fetch(
                    upstream, package.sha256, dest=target, filename=package.tarball, mirrors=bases
                )
            except ValueError as exc:
                if not bases or "unsupported URL scheme" not in str(exc):
                    raise
                # This robustfetch cannot fetch that scheme (ftp://): the mirrors still can.
        first = mirror_url(bases[0], package)
        return fetcher.fetch(
            first, package.sha256, dest=target, filename=package.tarball, mirrors=bases[1:]
        )
    except robustfetch.FetchError as error:
        return error
    except ValueError as exc:  # a URL robustfetch refuses (no host...): bad input
        raise BadPackage(str(exc)) from None


def report(outcome: Union[robustfetch.FetchResult, robustfetch.FetchError], tarball: str) -> None:
    if isinstance(outcome, robustfetch.FetchResult):
        where = "the cache" if outcome.from_cache else outcome.url
        print(f"ok   {outcome.path.name}  {outcome.size} bytes from {where}", flush=True)
        return
    print(f"FAIL {tarball}")
    for line in str(outcome).splitlines():
        print(f"     {line}")
    sys.stdout.flush()


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        description="Fetch SageMath upstream tarballs, verified against their checksums.ini."
    )
    made.add_argument("pkgs_dir", metavar="PKGS_DIR", type=Path, help="SAGE_ROOT/build/pkgs")
    made.add_argument("names", metavar="NAME", nargs="*", help="packages (default: all)")
    made.add_argument("--dest", metavar="DIR", type=Path, required=True, help="where to save")
    made.add_argument(
        "--mirror",
        metavar="BASE",
        action="append",
        default=[],
        help="mirror base URL or folder (${SPKG}, {filename} replaced); repeatable",
    )
    made.add_argument(
        "--mirror-list",
        metavar="FILE",
        type=Path,
        help="Sage's mirror list: one base URL per line, '#' comments",
    )
    return made


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    pkgs_dir: Path = args.pkgs_dir
    if not pkgs_dir.is_dir():
        print(f"error: {str(pkgs_dir)!r} is not a folder", file=sys.stderr)
        return EXIT_BAD
    if args.names:
        names: list[str] = list(args.names)
    else:
        names = sorted(f.name for f in pkgs_dir.iterdir() if f.is_dir() and has_sha256(f))
        if not names:
            print(
                f"error: no checksums.ini with a sha256= line in {str(pkgs_dir)!r}", file=sys.stderr
            )
            return EXIT_BAD
    try:
        args.dest.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"error: cannot create --dest: {exc}", file=sys.stderr)
        return EXIT_BAD
    # --mirror replaces $ROBUSTFETCH_MIRRORS, as in robustfetch's own command line; the
    # bases, ${SPKG} filled in per package, go to each fetch as its mirrors=.
    listed: list[str] = []
    if args.mirror_list is not None:
        try:
            listed = read_mirror_list(args.mirror_list)
        except (OSError, UnicodeDecodeError) as exc:
            print(f"error: cannot read --mirror-list: {exc}", file=sys.stderr)
            return EXIT_BAD
    mirrors = args.mirror + listed or os.environ.get("ROBUSTFETCH_MIRRORS", "").split()
    for base in mirrors:
        if "://" not in base and not (os.path.isabs(base) or base.startswith(("~", "."))):
            # robustfetch's rule too: "mirror.example/dist" is a URL missing its scheme
            print(f"error: mirror {base!r}: give a URL or a folder path", file=sys.stderr)
            return EXIT_BAD
    fetched = failed = bad = 0
    # One Fetcher for all packages: options checked once, connections reused. Packages are
    # fetched one by one so that each line appears as soon as its download ends.
    try:
        fetcher = robustfetch.Fetcher(mirrors=())
    except ValueError as exc:  # e.g. $ROBUSTFETCH_CA_BUNDLE names no file
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD
    with fetcher:
        for name in names:
            try:
                if name in ("", ".", "..") or name != Path(name).name:
                    raise BadPackage("not a package folder name")
                package = load_package(pkgs_dir / name)
                outcome = fetch_package(fetcher, package, mirrors, args.dest)
            except BadPackage as problem:
                print(f"BAD  {name}: {problem}", flush=True)
                bad += 1
                continue
            report(outcome, package.tarball)
            if isinstance(outcome, robustfetch.FetchError):
                failed += 1
            else:
                fetched += 1
    print(f"{fetched} fetched, {failed} failed, {bad} bad")
    if bad:
        return EXIT_BAD
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
