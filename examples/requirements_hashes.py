"""Download the files a pip requirements file pins by URL and ``--hash=sha256:``.

A hash-pinned requirements file (``pip install --require-hashes -r ...``) can name files
directly, either as a PEP 508 direct reference or as a bare URL::

    six @ https://files.pythonhosted.org/.../six-1.16.0.tar.gz --hash=sha256:1e61...
    https://example.org/wheels/attrs-23.1.0-py3-none-any.whl \\
        --hash=sha256:1f28... --hash=sha256:99b8...

This reads such a file with pip's rules (a trailing backslash continues the line, ``#``
starts a comment at the start of a line or after a space) and downloads every pinned URL
with ``robustfetch.fetch_many`` (8 at a time), writing each file into DEST only once its
sha256 matched. ``--mirror BASE`` (repeatable; a base URL, ``{filename}`` replaced, or a
local folder) is tried after each URL; without it robustfetch uses ``$ROBUSTFETCH_MIRRORS``.
``$ROBUSTFETCH_CA_BUNDLE`` chooses the CAs to trust.

Not fetched, each with a ``skip`` line saying why: requirements without a URL
(``six==1.16.0 --hash=...`` needs a package index), local paths, VCS URLs, URLs without a
sha256, and ``-r``/``-c``/``-e`` lines (nested files are not followed). Environment
markers (``; python_version < "3.10"``) are not evaluated: the file is fetched anyway.

Run from a clone, with robustfetch installed::

    python examples/requirements_hashes.py requirements.txt --dest wheelhouse [--mirror BASE]...

One report line per requirement, in file order, then a summary::

    ok   six-1.16.0.tar.gz  34041 bytes from https://files.pythonhosted.org/...
    FAIL attrs-23.1.0-py3-none-any.whl
         could not fetch attrs-23.1.0-py3-none-any.whl: 1 source failed
           - https://example.org/...: not_found: HTTP 404: ...
    skip six==1.16.0 (line 7): not a URL: needs an index
    1 fetched, 1 failed, 1 skipped

Exit status: 0 every pinned file was fetched; 1 some download failed; 2 bad usage, or a
line that cannot be right (a malformed ``--hash``, two files with one name). Bad lines are
reported (``BAD``) and counted in the summary; the other files are still fetched.
"""

from __future__ import annotations

import argparse
import posixpath
import re
import shlex
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union
from urllib.parse import unquote, urlsplit

import robustfetch

EXIT_OK, EXIT_FAILED, EXIT_BAD = 0, 1, 2

# pip's own patterns (pip/_internal/req/req_file.py).
_COMMENT = re.compile(r"(^|\s+)#.*$")
_URL = re.compile(r"(https?|file)://", re.IGNORECASE)
# PEP 508 direct reference: name [extras] @ URL
_DIRECT = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?\s*(?:\[[^\]]*\])?\s*@\s*(\S+)")
_SHA256 = re.compile(r"[0-9A-Fa-f]{64}")
_NESTED = {"-r", "--requirement", "-c", "--constraint", "-e", "--editable"}


@dataclass(frozen=True)
class Pinned:
    """A file to fetch: one URL, the sha256 to check, and how the line wrote it."""

    line: int
    requirement: str
    url: str
    sha256: str
    name: str  # the file name, for the report
    others: int  # further sha256 values on the line, which pip would accept too


@dataclass(frozen=True)
class NotFetched:
    """A line that is skipped (``bad=False``) or wrong (``bad=True``)."""

    line: int
    requirement: str
    why: str
    bad: bool = False


Entry = Union[Pinned, NotFetched]


def logical_lines(text: str) -> Iterator[tuple[int, str]]:
    """``(first line number, line)`` with continuations joined and comments removed."""
    first = 0
    pending: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.endswith("\\") and not _COMMENT.match(line):
            first = first if pending else number
            pending.append(line[:-1])
            continue
        if _COMMENT.match(line):
            line = " " + line  # a comment ends a continued line, and is removed with it
        if pending:
            yield first, _COMMENT.sub("", "".join([*pending, line])).strip()
            pending = []
        else:
            yield number, _COMMENT.sub("", line).strip()
    if pending:
        yield first, _COMMENT.sub("", "".join(pending)).strip()


def split_options(line: str) -> tuple[str, str]:
    """The requirement and the options after it: everything from the first ``-`` word on."""
    words = line.split(" ")
    for index, word in enumerate(words):
        if word.startswith("-"):
            return " ".join(words[:index]).strip(), " ".join(words[index:])
    return line.strip(), ""


def hash_values(options: str) -> list[str]:
    """Every ``--hash`` value (``--hash=alg:hex`` or ``--hash alg:hex``), in order."""
    words = shlex.split(options)
    values = []
    for index, word in enumerate(words):
        if word.startswith("--hash="):
            values.append(word[len("--hash=") :])
        elif word == "--hash" and index + 1 < len(words):
            values.append(words[index + 1])
    return values


def fragment_sha256(url: str) -> Optional[str]:
    """The value of a ``#sha256=<hex>`` URL fragment, which pip honours too."""
    for part in urlsplit(url).fragment.split("&"):
        key, _, value = part.partition("=")
        if key.lower() == "sha256":
            return value
    return None


def parse_line(number: int, line: str) -> Optional[Entry]:
    """One logical line as a :class:`Pinned` file, a :class:`NotFetched` note, or None."""
    requirement, options = split_options(line)
    if not requirement:
        first = options.split(maxsplit=1)[0].split("=")[0] if options else ""
        if first in _NESTED:
            return NotFetched(number, options, f"{first} is not followed by this example")
        return None  # --index-url, --require-hashes...: nothing to download
    try:
        values = hash_values(options)
    except ValueError as exc:  # shlex: an unclosed quote
        return NotFetched(number, requirement, f"cannot read the options: {exc}", bad=True)
    sha256s = []
    for value in values:
        algorithm, sep, digest = value.partition(":")
        if not sep or not digest:
            return NotFetched(number, requirement, f"--hash={value}: not alg:hex", bad=True)
        if algorithm.lower() != "sha256":
            continue  # sha384/sha512 pins: robustfetch could check them, fetch_many cannot
        if not _SHA256.fullmatch(digest):
            return NotFetched(number, requirement, f"--hash={value}: not 64 hex digits", bad=True)
        sha256s.append(digest.lower())
    url: Optional[str] = None
    if _URL.match(requirement):  # a bare URL
        url = requirement.split()[0]
    else:  # name @ URL, maybe followed by "; marker"
        direct = _DIRECT.fullmatch(requirement.split(";")[0].strip())
        url = direct[1] if direct else None
    if url is None:
        if requirement.startswith((".", "/", "~")):
            return NotFetched(number, requirement, "a local path: nothing to download")
        return NotFetched(number, requirement, "not a URL: needs an index")
    if not _URL.match(url):
        return NotFetched(number, requirement, f"{url}: not an http(s) or file URL")
    parts = urlsplit(url)
    if parts.scheme.lower() != "file" and not parts.hostname:
        return NotFetched(number, requirement, f"{url}: no host", bad=True)
    name = posixpath.basename(unquote(parts.path))
    if name in ("", ".", ".."):
        return NotFetched(number, requirement, f"{url}: names no file", bad=True)
    pinned = fragment_sha256(url)
    if pinned is not None:
        # robustfetch checks the fragment too: it must be one of the --hash values.
        if sha256s and pinned.lower() not in sha256s:
            why = "the URL's #sha256= is not among its --hash values"
            return NotFetched(number, requirement, why, bad=True)
        sha256s = [pinned.lower()]
    if not sha256s:
        return NotFetched(number, requirement, "no --hash=sha256:, nothing to verify against")
    # pip accepts a file matching any one of several --hash values (one per wheel of a
    # release, usually). robustfetch requires every hash it is given to match, so only the
    # first sha256 is passed: a file matching a later one is reported as hash_mismatch.
    return Pinned(number, requirement, url, sha256s[0], name, len(sha256s) - 1)


def read_requirements(text: str) -> list[Entry]:
    """Every line worth a report line, in file order; two files may not share a name."""
    entries: list[Entry] = []
    seen: dict[str, Pinned] = {}
    for number, line in logical_lines(text):
        entry = parse_line(number, line) if line else None
        if isinstance(entry, Pinned):
            earlier = seen.get(entry.name)
            if earlier is not None:
                same = (earlier.url, earlier.sha256) == (entry.url, entry.sha256)
                why = (
                    f"same file as line {earlier.line}"
                    if same
                    else (f"another file named {entry.name} is on line {earlier.line}")
                )
                entry = NotFetched(number, entry.requirement, why, bad=not same)
            else:
                seen[entry.name] = entry
        if entry is not None:
            entries.append(entry)
    return entries


def report(entry: Pinned, outcome: Union[robustfetch.FetchResult, robustfetch.FetchError]) -> None:
    if isinstance(outcome, robustfetch.FetchResult):
        where = "the cache" if outcome.from_cache else outcome.url
        print(f"ok   {outcome.path.name}  {outcome.size} bytes from {where}")
        return
    print(f"FAIL {entry.name}")
    for line in str(outcome).splitlines():
        print(f"     {line}")
    mismatch = robustfetch.Reason.HASH_MISMATCH
    if entry.others and any(a.reason is mismatch for a in outcome.attempts):
        hashes = entry.others + 1
        print(f"     (only the first of {hashes} sha256 hashes is checked; pip accepts any)")


def parser() -> argparse.ArgumentParser:
    made = argparse.ArgumentParser(
        description="Download the files a requirements file pins by URL and --hash=sha256:."
    )
    made.add_argument("requirements", metavar="REQUIREMENTS", type=Path)
    made.add_argument("--dest", metavar="DIR", type=Path, required=True, help="where to save")
    made.add_argument(
        "--mirror",
        metavar="BASE",
        action="append",
        default=[],
        help="mirror base URL or folder ({filename} replaced); repeatable",
    )
    return made


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parser().parse_args(argv)
    try:
        text = args.requirements.read_text(encoding="utf-8")
        args.dest.mkdir(parents=True, exist_ok=True)
    except (OSError, UnicodeDecodeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD
    entries = read_requirements(text)
    pinned = [e for e in entries if isinstance(e, Pinned)]
    # --mirror replaces $ROBUSTFETCH_MIRRORS, as in robustfetch's own command line.
    options = {"mirrors": list(args.mirror)} if args.mirror else {}
    requests = [robustfetch.Request(e.url, e.sha256, dest=args.dest) for e in pinned]
    try:
        outcomes = robustfetch.fetch_many(requests, workers=8, **options) if requests else []
    except ValueError as exc:  # checked before any download: nothing was fetched
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_BAD
    results = dict(zip(pinned, outcomes))
    fetched = failed = skipped = bad = 0
    for entry in entries:
        if isinstance(entry, Pinned):
            outcome = results[entry]
            report(entry, outcome)
            if isinstance(outcome, robustfetch.FetchError):
                failed += 1
            else:
                fetched += 1
        else:
            label = "BAD " if entry.bad else "skip"
            print(f"{label} {entry.requirement} (line {entry.line}): {entry.why}")
            if entry.bad:
                bad += 1
            else:
                skipped += 1
    summary = f"{fetched} fetched, {failed} failed, {skipped} skipped"
    print(summary + (f", {bad} bad" if bad else ""))
    if bad:
        return EXIT_BAD
    return EXIT_FAILED if failed else EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
