"""``tryon-sandbox`` (or ``python -m django_tryon.sandbox``): run the look-alike of DashScope (aitryon, the
refiner and parsing, the Qwen image-editing models) and of FASHN's API."""

from __future__ import annotations

import argparse
import logging
import sys

from ..console import prog_name
from .faults import parse
from .state import Config


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The sandbox's options (shared by ``python -m django_tryon.sandbox`` and ``manage.py tryon_sandbox``)."""
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="an accepted API key (repeatable; default sk-sandbox)",
    )
    parser.add_argument(
        "--fashn-key",
        action="append",
        dest="fashn_keys",
        metavar="KEY",
        help="an accepted key of the FASHN-compatible API under /fashn (repeatable; default fa-sandbox)",
    )
    parser.add_argument(
        "--latency",
        type=float,
        default=None,
        help="mean task duration in seconds (default: the documented 15–30 s for aitryon, 40–60 s plus)",
    )
    parser.add_argument(
        "--latency-spread",
        type=float,
        default=0.5,
        help="durations are uniform in latency × (1 ± spread) (default 0.5)",
    )
    parser.add_argument("--concurrency", type=int, default=5, help="tasks in flight per model (default 5)")
    parser.add_argument(
        "--concurrency-policy",
        choices=("queue", "reject"),
        default="queue",
        help="over the limit: keep new tasks PENDING (queue) or answer 429 (reject)",
    )
    parser.add_argument(
        "--submit-rate", type=float, default=10.0, help="submits per second per key and model"
    )
    parser.add_argument("--query-rate", type=float, default=20.0, help="task queries per second per key")
    parser.add_argument(
        "--faults", default="", help="fault spec, e.g. 'submit=503*2,task=fail:InvalidPerson%%10'"
    )
    parser.add_argument("--fault-timeout", type=float, default=35.0, help="seconds a 'timeout' fault waits")
    parser.add_argument(
        "--no-check-person", action="store_true", help="render any photo with a detectable body"
    )
    parser.add_argument(
        "--render",
        choices=("engine", "copy"),
        default="engine",
        help="results drawn by the offline engine (default), or the person photo as is (load runs)",
    )
    parser.add_argument(
        "--public-url", default="", help="base URL for result and upload links (default: as requested)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for latencies and fault probabilities")
    parser.add_argument(
        "--allowed-host",
        action="append",
        dest="allowed_hosts",
        metavar="HOST",
        default=[],
        help="a Host name to answer besides localhost (repeatable; '*' for any)",
    )
    parser.add_argument("--quiet", action="store_true", help="no request log")


def main(argv: list[str] | None = None) -> int:
    """Parse the sandbox's options and serve it (the ``tryon-sandbox`` console script)."""
    parser = argparse.ArgumentParser(prog=prog_name("django_tryon.sandbox"), description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        parse(args.faults)
    except ValueError as err:
        parser.error(str(err))
    return run(args)


def run(args: argparse.Namespace) -> int:
    """Serve the sandbox with the parsed options (blocks)."""
    config = Config(
        api_keys=tuple(args.api_keys or ("sk-sandbox",)),
        fashn_keys=tuple(args.fashn_keys or ("fa-sandbox",)),
        latency=args.latency,
        latency_spread=args.latency_spread,
        concurrency=args.concurrency,
        concurrency_policy=args.concurrency_policy,
        submit_rate=args.submit_rate,
        query_rate=args.query_rate,
        faults=args.faults,
        fault_timeout=args.fault_timeout,
        check_person=not args.no_check_person,
        render=args.render,
        public_url=args.public_url,
        seed=args.seed,
        allowed_hosts=(*args.allowed_hosts, *([args.host] if args.host not in ("0.0.0.0", "::") else [])),
    )
    if args.quiet:
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    from . import serve

    base = f"http://{args.host}:{args.port}"
    print(
        f"Sandbox on {base}: DashScope {base}/api/v1 (keys: {', '.join(config.api_keys)}), "
        f"FASHN {base}/fashn/v1 (keys: {', '.join(config.fashn_keys)})",
        file=sys.stderr,
        flush=True,
    )
    serve(config, args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
