"""One command line for the host tools: `python -m tools COMMAND [options]`.

Every command is one module under tools/ with two functions:
    add_parser(sub) -> argparse parser   (sub.add_parser(NAME, ...); p.set_defaults(func=run))
    run(args) -> exit code
Add a command by writing such a module and naming it in COMMANDS. Every command follows
one exit-code table (tools/exitcode.py) and shares its common options (tools/options.py).
"""

import argparse
import importlib
import sys

from tools import exitcode, term

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
    "fleet",
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
    for p in sub.choices.values():  # one exit-code table, in every command's --help
        p.epilog = (p.epilog + "\n\n" if p.epilog else "") + exitcode.TABLE
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.func(args) or exitcode.PASSED
        sys.stdout.flush()  # a reader that went away shows here, not in the interpreter's exit
        return code
    except BrokenPipeError:
        term.close_stdout()
        return exitcode.FAILED
    except KeyboardInterrupt:
        if term.pipe_closed():  # a thread's line found stdout's reader gone
            return exitcode.FAILED
        print("%s: interrupted before it had a result" % args.command, file=sys.stderr)
        return exitcode.FAILED


if __name__ == "__main__":
    sys.exit(main())
