"""One command line: every subcommand's --help, flags and exit codes follow one table
(tools/exitcode.py, docs/tools.md "Exit codes"); option values are checked with the allowed
range in the message; a missing or busy serial port is one line; a closed pipe or Ctrl-C ends
without a traceback; `make help` lists every target."""

import argparse
import os
import pty
import re
import subprocess
import sys
import types

import pytest

from tools import cli, exitcode, fw, options, term

PY = sys.executable


def tools(*argv, **kw):
    kw.setdefault("capture_output", True)
    return subprocess.run([PY, "-m", "tools", *argv], text=True, cwd=fw.ROOT, timeout=120, **kw)


def subcommands():
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices


def flags(parser):
    """{long flag: action} of a subcommand (help aside)."""
    out = {}
    for a in parser._actions:
        longs = [o for o in a.option_strings if o.startswith("--") and o != "--help"]
        if longs:
            out[longs[0]] = a
    return out


# -- --help and the exit-code table -------------------------------------------------------
def test_every_subcommand_has_help_with_the_exit_code_table():
    names = list(subcommands())
    assert {"sim", "emu", "check", "deploy", "monitor", "selftest", "send", "listen", "probe",
            "discover", "top", "status"} <= set(names)
    table = " ".join(exitcode.TABLE.split())
    for name in names:
        p = tools(name, "--help")
        assert p.returncode == exitcode.PASSED, (name, p.stderr)
        assert table in " ".join(p.stdout.split()), name
        assert "Traceback" not in p.stderr


def test_the_documented_table_is_the_one_the_tools_use():
    doc = (fw.ROOT / "docs" / "tools.md").read_text()
    section = doc[doc.index("## Exit codes"):]
    rows = dict(re.findall(r"^\| (\d) \| ([^|]+) \|", section, re.M))
    assert set(rows) == {"0", "1", "2"}
    assert (exitcode.PASSED, exitcode.FAILED, exitcode.USAGE) == (0, 1, 2)
    assert "passed" in rows["0"] and "failed" in rows["1"] and "usage" in rows["2"]


def test_usage_errors_exit_2():
    for argv in (["nope"], ["sim", "--bogus"], ["check", "a", "b"], ["status"],
                 ["send"], ["listen", "-g", "10.0.0.1:5"]):
        p = tools(*argv)
        assert p.returncode == exitcode.USAGE, (argv, p.stdout, p.stderr)
        assert "usage:" in p.stderr and "Traceback" not in p.stderr


# -- the same flag means the same thing everywhere ------------------------------------------
def test_a_flag_has_one_short_flag_placeholder_and_type_everywhere():
    seen = {}  # long flag -> (command, short flags, metavar, type, kind of action)
    short_of = {}  # short flag -> long flag
    for name, parser in subcommands().items():
        for flag, action in flags(parser).items():
            shorts = tuple(sorted(o for o in action.option_strings if not o.startswith("--")))
            shape = (shorts, action.metavar, action.type, type(action).__name__.replace(
                "_AppendAction", "_StoreAction"))
            if flag in seen:
                assert seen[flag][1:] == shape, (flag, seen[flag][0], name, seen[flag][1:], shape)
            else:
                seen[flag] = (name,) + shape
            for s in shorts:
                assert short_of.setdefault(s, flag) == flag, (s, short_of[s], flag, name)
            if flag in options.SPECS:  # declared through the shared table
                spec = options.SPECS[flag]
                assert shorts == ((spec.short,) if spec.short else ()), (name, flag)
    # the options the issue named: one meaning each
    assert seen["--port"][2] == "PORT"  # a serial port everywhere (status has --udp-port)
    assert "--port" not in flags(subcommands()["status"])
    assert seen["--quiet"][1] == ("-q",) and seen["--iface"][1] == ("-i",)
    assert seen["--timeout"][2] == "S" and seen["--group"][2] == "G:P"
    assert "--no-progress" not in seen and "--quiet-console" not in seen


def test_max_loss_and_ttl_defaults_are_the_same_everywhere():
    defaults = {}
    for parser in subcommands().values():
        for flag in ("--max-loss", "--ttl"):
            if flag in flags(parser):
                defaults.setdefault(flag, set()).add(flags(parser)[flag].default)
    assert defaults["--max-loss"] == {options.MAX_LOSS_PCT}
    assert defaults["--ttl"] == {1}  # send, probe, selftest, discover: this LAN only


def out_of_range(rng):
    """A value just outside a Range."""
    if rng.low is not None:
        return str(rng.low if rng.above else rng.low - 1)
    return str(rng.high + 1)


def test_every_range_is_checked_with_the_range_in_the_message(capsys):
    checked = 0
    for name, parser in subcommands().items():
        for flag, action in flags(parser).items():
            if not isinstance(action.type, options.Range):
                continue
            argv = [name] + (["198.18.0.1"] if name == "status" else []) + \
                [flag, out_of_range(action.type)]
            if name in ("send", "listen") and flag != "--group":
                argv += ["-g", "224.0.10.1:50000"]
            with pytest.raises(SystemExit) as e:
                cli.build_parser().parse_args(argv)
            err = capsys.readouterr().err
            assert e.value.code == exitcode.USAGE, argv
            assert "out of range (allowed: %s)" % action.type.allowed in err, (argv, err)
            checked += 1
    assert checked >= 30


def test_the_values_the_issue_named_are_refused():
    for argv, allowed in ((["sim", "--rate", "-5"], "0-1000000 datagrams/s"),
                          (["sim", "--duration", "0"], "more than 0"),
                          (["send", "-g", "224.0.10.1:5", "--size", "10"], "24-65507 bytes"),
                          (["probe", "--ttl", "0"], "1-255"),
                          (["probe", "--max-loss", "101"], "0-100 %"),
                          (["listen", "-g", "224.0.10.1:5", "--count", "0"], "1-1000000000"),
                          (["emu", "--uid", "xyz"], "16 hex digits")):
        p = tools(*argv)
        assert p.returncode == exitcode.USAGE, argv
        assert allowed in p.stderr, (argv, p.stderr)


# -- ports ------------------------------------------------------------------------------------
@pytest.mark.parametrize("command", ["deploy", "monitor", "selftest"])
def test_a_missing_port_is_one_line(command):
    p = tools(command, "--port", "/dev/ttyACM8", stdin=subprocess.DEVNULL)
    assert p.returncode == exitcode.USAGE, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert lines == ["%s: /dev/ttyACM8: no such serial port: plug the board in, or give the port "
                     "it has (`python -m mpremote devs` lists them)" % command]
    assert "import" not in p.stdout + p.stderr  # never the inventory script
    assert "in use by another program" not in p.stdout + p.stderr


def test_several_ports_each_named():
    p = tools("deploy", "--port", "/dev/ttyACM8", "--port", "/dev/ttyACM9")
    assert p.returncode == exitcode.USAGE
    assert [ln.split(":")[1].strip() for ln in p.stderr.splitlines()] == ["/dev/ttyACM8",
                                                                          "/dev/ttyACM9"]


def test_monitor_and_selftest_take_one_board():
    p = tools("monitor", "--port", "/dev/ttyACM8", "--port", "/dev/ttyACM9", "--for", "1")
    assert p.returncode == exitcode.USAGE
    assert "one board at a time: --port was given 2 times" in p.stderr


def test_a_busy_port_names_who_holds_it():
    import serial

    master, slave = pty.openpty()
    name = os.ttyname(slave)
    holder = serial.Serial(name, exclusive=True)  # as mpremote holds it (monitor)
    try:
        for command in ("deploy", "monitor"):
            p = tools(command, "--port", name, "--for", "1") if command == "monitor" else \
                tools(command, "--port", name)
            assert p.returncode == exitcode.USAGE, p.stdout + p.stderr
            assert p.stderr.strip() == (
                "%s: %s: in use by another program (pid %d %s): close it (a monitor, mpremote, "
                "Thonny or screen) and try again" % (command, name, os.getpid(),
                                                     open("/proc/self/comm").read().strip()))
    finally:
        holder.close()
        os.close(master)
        os.close(slave)


def test_monitor_says_the_port_before_the_terminal():
    p = tools("monitor", "--port", "/dev/ttyACM8", stdin=subprocess.DEVNULL)
    assert "no such serial port" in p.stderr and "terminal" not in p.stderr


def test_make_deploy_takes_several_ports():
    p = subprocess.run(["make", "-s", "deploy", 'PORT=/dev/ttyACM8 /dev/ttyACM9'],
                       capture_output=True, text=True, cwd=fw.ROOT, timeout=300)
    assert "deploy: /dev/ttyACM8: no such serial port" in p.stderr, p.stdout + p.stderr
    assert "deploy: /dev/ttyACM9: no such serial port" in p.stderr
    assert "unrecognized arguments" not in p.stderr


# -- a closed pipe, Ctrl-C --------------------------------------------------------------------
def test_a_closed_pipe_ends_quietly():
    r, w = os.pipe()
    os.close(r)  # the reader is gone before a byte was written (`check --json | head -0`)
    try:
        p = subprocess.run([PY, "-m", "tools", "check", "--json"], stdout=w,
                           stderr=subprocess.PIPE, text=True, cwd=fw.ROOT, timeout=60)
    finally:
        os.close(w)
    assert p.stderr == ""  # no BrokenPipeError, no "Exception ignored"
    assert p.returncode == exitcode.FAILED


def test_ctrl_c_before_a_result_is_one_line_and_exit_1(monkeypatch, capsys):
    from tools import check

    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr(check, "run", interrupted)
    assert cli.main(["check"]) == exitcode.FAILED
    assert capsys.readouterr().err == "check: interrupted before it had a result\n"


# -- colour -------------------------------------------------------------------------------------
def _stream(tty):
    return types.SimpleNamespace(isatty=lambda: tty)


def test_pass_fail_coloured_on_a_terminal_only_and_never_with_no_color(monkeypatch):
    monkeypatch.setenv("TERM", "xterm")
    monkeypatch.delenv("NO_COLOR", raising=False)
    line = "selftest: PASS boot / FAIL link / SKIP cable"
    coloured = term.verdicts(line, _stream(True))
    assert "\x1b[32mPASS\x1b[0m" in coloured and "\x1b[31mFAIL\x1b[0m" in coloured
    assert term.verdicts(line, _stream(False)) == line  # a pipe, a file
    monkeypatch.setenv("NO_COLOR", "1")
    assert term.verdicts(line, _stream(True)) == line
    monkeypatch.delenv("NO_COLOR")
    monkeypatch.setenv("TERM", "dumb")
    assert term.verdicts(line, _stream(True)) == line


# -- make help ----------------------------------------------------------------------------------
def test_make_help_lists_every_target_with_one_line():
    makefile = (fw.ROOT / "Makefile").read_text()
    phony = set(re.search(r"^\.PHONY: (.*)$", makefile, re.M).group(1).split())
    p = subprocess.run(["make", "-s", "help"], capture_output=True, text=True, cwd=fw.ROOT,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    listed = {}
    for line in p.stdout.splitlines():
        m = re.fullmatch(r"  make (\S+) +(\S.*)", line)
        assert m, line
        listed[m.group(1)] = m.group(2)
    assert set(listed) == phony
    assert len(p.stdout.splitlines()) == len(phony)  # one line each
