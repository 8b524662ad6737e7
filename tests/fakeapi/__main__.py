"""Command line: serve the fake Bilibili API and print its base URL on one line.

``python -m tests.fakeapi [--port 0] [--rate-limit R] ...`` binds (port 0
picks a free port), prints ``http://HOST:PORT`` to stdout and serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio

from tests.fakeapi.app import Knobs, create_app, serve_until_signalled


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.fakeapi", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--rate-limit", type=float, default=0.0, help="req/s per client, 0=off")
    parser.add_argument("--ban-seconds", type=float, default=5.0)
    parser.add_argument("--fault-rate", type=float, default=0.0, help="0..1")
    parser.add_argument("--fault-seed", type=int, default=0)
    parser.add_argument("--wbi-rotate-seconds", type=float, default=0.0, help="0 = never")
    parser.add_argument("--no-require-wbi", dest="require_wbi", action="store_false")
    parser.add_argument("--no-require-buvid", dest="require_buvid", action="store_false")
    parser.add_argument("--no-require-dm-img", dest="require_dm_img", action="store_false")
    parser.add_argument("--relation-login-required", action="store_true")
    parser.add_argument("--cards-max-ids", type=int, default=30, help="ids per cards request")
    args = parser.parse_args(argv)
    try:
        args.knobs = Knobs()
        args.knobs.update(
            {
                "rate_limit": args.rate_limit,
                "ban_seconds": args.ban_seconds,
                "fault_rate": args.fault_rate,
                "require_wbi": args.require_wbi,
                "require_buvid": args.require_buvid,
                "require_dm_img": args.require_dm_img,
                "relation_login_required": args.relation_login_required,
                "wbi_rotate_seconds": args.wbi_rotate_seconds,
                "cards_max_ids": args.cards_max_ids,
            }
        )
    except ValueError as exc:
        parser.error(str(exc))
    return args


async def serve(args: argparse.Namespace) -> None:
    await serve_until_signalled(create_app(args.knobs, args.fault_seed), args.host, args.port)


def main(argv: list[str] | None = None) -> None:
    asyncio.run(serve(parse_args(argv)))


if __name__ == "__main__":
    main()
