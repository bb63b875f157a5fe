"""Shared pytest fixtures and helpers for host_tests."""

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `pytest` (not `python -m pytest`) from anywhere
    sys.path.insert(0, str(REPO))


# --- private LAN (network namespaces) --------------------------------------------------------
_STALE_CLEANED = False


def require_namespaces():
    """Skip the calling test when network namespaces cannot be made here; in CI (``CI=true``)
    that is a failure instead, so a broken runner cannot pass by skipping."""
    from tools.twin.lan import namespaces_available

    ok, reason = namespaces_available()
    if ok:
        return
    if os.environ.get("CI", "").strip().lower() == "true":
        pytest.fail(f"network namespaces are required in CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture
def lan():
    """A fresh private LAN (``tools.twin.lan.Lan``), deleted after the test."""
    global _STALE_CLEANED
    require_namespaces()
    from tools.twin.lan import Lan, cleanup_stale

    if not _STALE_CLEANED:  # leftovers of killed runs (their pid is gone)
        cleanup_stale()
        _STALE_CLEANED = True
    with Lan() as net:
        yield net


@pytest.fixture
def net(lan):
    """The LAN most twin tests use: hosts "board", "pc1" (sender) and "pc2" (listener) at
    the LAN's standing addresses (tools/twin/lan.py), and a querier that made the switch snoop
    strictly (and then stays silent). Returns (lan, board_host, pc1, pc2)."""
    from tools.twin.lan import BOARD_IP, LISTENER_IP, SENDER_IP

    board = lan.add_host("board", BOARD_IP)
    pc1 = lan.add_host("pc1", SENDER_IP)
    pc2 = lan.add_host("pc2", LISTENER_IP)
    lan.query()
    return lan, board, pc1, pc2
