"""Run bilicrawl's benchmarks and write their figures into ``docs/benchmarks.md``.

From the project root::

    make bench                        # everything, about 24 minutes
    .venv/bin/python -m bench --quick # a smoke run of everything (about 3.5 minutes), no docs
    .venv/bin/python -m bench --only request --videos 1000 --repeats 3
    .venv/bin/python -m bench --only request --variant 'impersonate=-s BILI_IMPERSONATE=chrome'

Each benchmark is a function ``run(options) -> Section`` registered in
:data:`BENCHMARKS`; a new one (danmaku decoding, storage, export...) is a
module with such a function and one line here. Each prints its progress, then
its section of the report; at the end the sections are written into
``docs/benchmarks.md`` between their markers (not after ``--quick`` or with
``--no-docs``). Every child process and server is stopped on the way out,
Ctrl-C included. All traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import dataclasses
import shlex
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

from bench import danmaku, faults, input_memory, rate_limit, report, request_path
from bench.common import ROOT, Options

if TYPE_CHECKING:
    from collections.abc import Callable

    from bench.common import Section


@dataclasses.dataclass(frozen=True)
class Benchmark:
    run: Callable[[Options], Section]
    summary: str


BENCHMARKS: dict[str, Benchmark] = {
    "request": Benchmark(
        request_path.run,
        "request path: videos/s and CPU per response, bilicrawl vs plain Scrapy vs raw aiohttp "
        "on a static replay (about 4 minutes)",
    ),
    "rate": Benchmark(
        rate_limit.run,
        "rate-limit settling against the fake API's per-client limit, two limits "
        "(about 2.5 minutes)",
    ),
    "input": Benchmark(
        input_memory.run,
        "memory and start-up on a 1,000,000-line ids file (about 1.5 minutes)",
    ),
    "faults": Benchmark(
        faults.run,
        "random faults: throughput of 500 videos at 20 req/s with 20 % mixed faults against "
        "the fault-free crawl, slowdowns by reason (about 3 minutes)",
    ),
    "danmaku": Benchmark(
        danmaku.run,
        "danmaku per CPU-second from protobuf body to stored row, a part of a million, "
        "against the raw protobuf decode and an lxml XML parse; peak RSS (about 3 minutes)",
    ),
}
DOCS = ROOT / "docs" / "benchmarks.md"


def parse_variant(text: str) -> tuple[str, list[str]]:
    name, _, args = text.partition("=")
    extra = shlex.split(args)
    if not name.strip() or not extra:
        raise argparse.ArgumentTypeError(f"expected NAME='-s SETTING=VALUE ...', not {text!r}")
    return name.strip(), extra


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    names = ", ".join(BENCHMARKS)
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated benchmarks to run, of: {names} (default: all)",
    )
    parser.add_argument("--skip", default="", help="comma-separated benchmarks not to run")
    parser.add_argument(
        "--videos", type=int, help="videos per request-path run (default 3000, quick 300)"
    )
    parser.add_argument(
        "--repeats", type=int, help="request-path repetitions (default 5, quick 2)"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a fast smoke run: 300 videos, 2 repetitions, 30 s rate and 10 s "
        "input crawls, 150-video fault runs; docs/benchmarks.md is left "
        "alone",
    )
    parser.add_argument(
        "--variant",
        action="append",
        type=parse_variant,
        default=[],
        metavar="NAME='-s X=Y ...'",
        help="one more request-path run of bilicrawl with these extra "
        "`scrapy crawl` arguments (repeatable); see also "
        "request_path.VARIANTS",
    )
    parser.add_argument(
        "--docs", type=Path, default=DOCS, help="the report to update (default docs/benchmarks.md)"
    )
    parser.add_argument("--no-docs", action="store_true", help="print only")
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the work directory (ids files, crawl logs) and print its path",
    )
    parser.add_argument(
        "--list",
        action="store_true",
        help="list the benchmarks and the registered variants, and exit",
    )
    args = parser.parse_args(argv)
    chosen = [name.strip() for name in args.only.split(",") if name.strip()]
    skipped = {name.strip() for name in args.skip.split(",") if name.strip()}
    unknown = (set(chosen) | skipped) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmarks {sorted(unknown)}; they are: {names}")
    args.chosen = [name for name in chosen if name not in skipped]
    if args.videos is None:
        args.videos = 300 if args.quick else 3000
    if args.repeats is None:
        args.repeats = 2 if args.quick else 5
    if args.videos < 1 or args.repeats < 1:
        parser.error("--videos and --repeats must be at least 1")
    return args


def command_line(argv: list[str]) -> str:
    return "make bench" if not argv else "python -m bench " + shlex.join(argv)


def _interrupted(_signum: int, _frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    # SIGTERM stops the bench like Ctrl-C: children and servers are stopped on the way out.
    # SIGINT is handled even if the bench was started in the background, which ignores it.
    signal.signal(signal.SIGTERM, _interrupted)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.list:
        for name, benchmark in BENCHMARKS.items():
            print(f"{name:<8} {benchmark.summary}")
        for name, extra in request_path.VARIANTS.items():
            print(f"variant bilicrawl+{name}: {shlex.join(extra)}")
        return 0
    started = time.monotonic()
    sections: list[Section] = []
    failed: list[str] = []
    directory = tempfile.mkdtemp(prefix="bilicrawl-bench-")
    options = Options(
        videos=args.videos,
        repeats=args.repeats,
        quick=args.quick,
        variants=dict(args.variant),
        workdir=Path(directory),
        command=command_line(argv),
    )
    try:
        for name in args.chosen:
            print(f"\n=== {name}: {BENCHMARKS[name].summary}", flush=True)
            began = time.monotonic()
            try:
                section = BENCHMARKS[name].run(options)
            except Exception:  # one broken benchmark does not lose the others' figures
                traceback.print_exc()
                failed.append(name)
                continue
            sections.append(section)
            print(f"\n{section.markdown()}\n", flush=True)
            print(f"({name} took {time.monotonic() - began:.0f} s)", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: every child process has been stopped", file=sys.stderr)
        return 130
    finally:
        if args.keep:
            print(f"work directory kept: {directory}")
        else:
            import shutil  # noqa: PLC0415

            shutil.rmtree(directory, ignore_errors=True)
    if sections and not (args.quick or args.no_docs):
        report.update(args.docs, sections)
        print(f"updated {args.docs}")
    print(
        f"done in {(time.monotonic() - started) / 60:.1f} min"
        + (f"; FAILED: {', '.join(failed)}" if failed else "")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
