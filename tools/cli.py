"""One command line for the host tools: `python -m tools COMMAND [options]`.

Every command is one module under tools/ with two functions:
    add_parser(sub) -> argparse parser   (sub.add_parser(NAME, ...); p.set_defaults(func=run))
    run(args) -> exit code
Add a command by writing such a module and naming it in COMMANDS.
"""

import argparse
import importlib
import sys

# Order = order in `--help`. Workflow first, traffic tools, then fleet tools.
COMMANDS = (
    "sim",
    "emu",
    "check",
    "deploy",
    "monitor",
    "selftest",
    "send",
    "listen",
    "probe",
    "discover",
    "status",
)


def build_parser(commands=COMMANDS):
    from tools import fw

    parser = argparse.ArgumentParser(
        prog="python -m tools",
        description="mcast-relay host tools: simulate, check, deploy, monitor, test traffic.",
        epilog="`python -m tools COMMAND --help` for a command's options. docs/tools.md has "
               "examples and the walk-through from an unboxed board to forwarding traffic.")
    parser.add_argument("--version", action="version",
                        version="mcast-relay tools %s" % fw.version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in commands:
        importlib.import_module("tools." + name).add_parser(sub)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        print("%s: interrupted" % args.command, file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
