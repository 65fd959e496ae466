"""`mock-gateway` / `python -m mock_gateway`: serve the mock gateway, or run a contract tool.

With no command it serves the mock (its flags are the top-level ones); `proxy` and `replay` run the
validating proxy and the replay of a cassette.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .contract_tools._cli import add_commands
from .server._cli import add_arguments, config_from, serve

__all__ = ["config_from", "main", "parser"]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="mock-gateway",
        usage="%(prog)s [options]  |  %(prog)s proxy --upstream URL ...  |  %(prog)s replay CASSETTE ...",
        description="An offline Boogu Image API gateway. With no command, serve it.",
    )
    add_arguments(p)
    commands = p.add_subparsers(dest="command", metavar="COMMAND", title="other commands")
    add_commands(commands)
    p.set_defaults(handler=serve)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(list(sys.argv[1:] if argv is None else argv))
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
