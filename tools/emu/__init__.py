"""The emulated board (see tools/emu/command.py for the `python -m tools emu` command)."""

from tools.emu.command import NAME, add_parser, run

__all__ = ["NAME", "add_parser", "run"]
