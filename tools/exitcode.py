"""The exit codes of every command (docs/tools.md, "Exit codes"): one table for all.

A command returns PASSED when it did its job (the check or measurement passed, the run it was
asked for ended normally, Ctrl-C included for the commands that run until stopped), FAILED when
the check or measurement failed (or was stopped before it had a result), USAGE when it could not
start: a bad option or value (argparse's own exit code 2 too), or an environment that lacks what
it needs (a missing or busy serial port, no network namespaces, no MicroPython).
"""

PASSED = 0
FAILED = 1
USAGE = 2

# The table as each command's --help shows it (cli.py adds it to every subcommand).
TABLE = ("exit codes: 0 passed; 1 the check or measurement failed (or was stopped before it "
         "had a result); 2 usage or environment error (a bad option value, a missing or busy "
         "port, no network namespaces)")
