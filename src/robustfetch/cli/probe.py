"""The ``robustfetch probe`` command: a client report, then one report per host given."""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
from typing import TYPE_CHECKING, Any, Union

from .common import EXIT_FAILED, EXIT_OK, EXIT_USAGE, parse_connect_to, seconds

if TYPE_CHECKING:
    from ..diagnose.client import Capabilities
    from ..diagnose.host import HostReport

__all__ = ["add_probe_command", "report_record", "run_probe"]


def add_probe_command(commands: argparse._SubParsersAction[Any]) -> None:
    """Add ``probe [URL|HOST]... [--json] [--ca-bundle FILE] [--connect-to ...]``.

    :param commands: the main parser's sub-command set (``add_subparsers()``).
    """
    parser = commands.add_parser(
        "probe",
        help="report what this client can do, and what hosts demand",
        description=(
            "Without arguments: this client's Python, OpenSSL, TLS versions, trust and "
            "proxies, with the fix for every problem found. With hosts or URLs: each "
            "resolved address's TLS handshake and certificate, and whether it needs SNI."
        ),
        epilog="exit codes: 0 no problem and every host verified, 1 otherwise, 2 bad usage",
    )
    parser.add_argument("targets", metavar="URL|HOST", nargs="*")
    parser.add_argument("--json", action="store_true", help="one JSON object per report")
    parser.add_argument("--ca-bundle", metavar="FILE", help="PEM file of trusted CAs")
    parser.add_argument(
        "--trust", choices=("certifi", "system", "truststore"), help="where trust comes from"
    )
    parser.add_argument(
        "--connect-to",
        metavar="HOST:PORT:ADDR:PORT",
        action="append",
        default=[],
        help="connect to ADDR:PORT for HOST:PORT, keeping SNI and checks for HOST",
    )
    parser.add_argument("--connect-timeout", metavar="S", type=seconds)
    parser.set_defaults(handler=run_probe, verbose=0)


def run_probe(args: argparse.Namespace) -> int:
    """Print the reports; 0 if no problem and every host verified, 1 if not, 2 on bad usage.

    :param args: parsed by the parser :func:`add_probe_command` made.
    """
    # The diagnosis (and http.client under it) loads for this command only.
    from ..diagnose.client import probe
    from ..diagnose.host import probe_host

    try:
        given = _options(args)
        client = probe(**given)
    except ValueError as exc:
        print(f"robustfetch: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    _emit(client, args.json)
    ok = not client.problems
    for target in args.targets:  # each report printed as soon as it is known
        try:
            host = probe_host(target, **given)
        except ValueError as exc:
            print(f"robustfetch: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        if not args.json:
            print()
        _emit(host, args.json)
        ok = ok and host.verified
    return EXIT_OK if ok else EXIT_FAILED


def _emit(report: Union[Capabilities, HostReport], as_json: bool) -> None:
    print(json.dumps(report_record(report)) if as_json else report, flush=True)


def report_record(report: Union[Capabilities, HostReport]) -> dict[str, Any]:
    """``report`` as plain JSON data: sets as sorted lists, datetimes as ISO 8601 strings.

    :param report: from :func:`~robustfetch.probe.probe` or
        :func:`~robustfetch.hostprobe.probe_host`.
    """
    from ..diagnose.client import Capabilities
    from ..diagnose.host import HostReport

    record: dict[str, Any] = {"kind": "client" if isinstance(report, Capabilities) else "host"}
    record.update(_plain(dataclasses.asdict(report)))
    if isinstance(report, HostReport):
        record["verified"] = report.verified
        certificate = report.certificate
        record["certificate"] = _plain(dataclasses.asdict(certificate)) if certificate else None
    return record


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(_plain(item) for item in value)
    if isinstance(value, (list, tuple)):
        return [_plain(item) for item in value]
    if isinstance(value, dt.datetime):
        return value.isoformat()
    return value


def _options(args: argparse.Namespace) -> dict[str, Any]:
    options: dict[str, Any] = {"trust": args.trust} if args.trust else {}
    if args.ca_bundle is not None:
        options["ca_bundle"] = args.ca_bundle
    if args.connect_timeout is not None:
        options["connect_timeout"] = args.connect_timeout
    if args.connect_to:
        options["connect_to"] = dict(parse_connect_to(item) for item in args.connect_to)
    return options
