"""Helpers for tests that run simulated boards on the private LAN."""

import json
import subprocess
import threading

from tools.twin import mpy, traffic
from tools.twin.runner import Board, twin_config

BOARD_IP = "198.18.0.10"
SENDER_IP = "198.18.0.20"
LISTENER_IP = "198.18.0.30"


def load_default_config():
    return json.loads((mpy.ROOT / "config.json").read_text())


class Recorder:
    """Records every datagram arriving on group:port in a host namespace."""

    def __init__(self, host, group, port, quiet_s=3.0):
        self.proc = host.popen(traffic.recorder_argv(group, port, host.ip, quiet_s),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               cwd=mpy.ROOT)
        self.datagrams = []
        self._ready = threading.Event()
        self._t = threading.Thread(target=self._read, daemon=True)
        self._t.start()
        if not self._ready.wait(10):
            raise RuntimeError("recorder did not start: " + self.proc.stderr.read())

    def _read(self):
        for line in self.proc.stdout:
            d = json.loads(line)
            if d.get("ready"):
                self._ready.set()
            else:
                self.datagrams.append((d["src"], bytes.fromhex(d["data"])))

    def wait(self, timeout=60):
        """Wait until the recorder stops (quiet_s with nothing new)."""
        self.proc.wait(timeout)
        self._t.join(5)
        return self.datagrams


def send_payloads(host, group, port, payloads, tmp_path, interval=0.002, loop=False):
    f = tmp_path / ("payloads-%s-%d.txt" % (group, port))
    f.write_text("\n".join(p.hex() for p in payloads) + "\n")
    res = host.run(traffic.sender_argv(group, port, host.ip, str(f), interval, loop),
                   capture_output=True, text=True, cwd=mpy.ROOT, timeout=120)
    assert res.returncode == 0, res.stderr
    return int(res.stdout.split()[-1])


def start_board(lan_host, config=None, personality="lwip", ip=BOARD_IP, repl=False, uid=None,
                **relay):
    base = config if config is not None else load_default_config()
    relay.setdefault("watchdog_ms", 0)
    relay.setdefault("stats_interval_s", 1)
    cfg = twin_config(base, ip, **relay)
    kw = {"uid": uid} if uid else {}
    b = Board(lan_host, cfg, personality=personality, repl=repl, **kw)
    b.start()
    return b


def wait_running(board, timeout=30):
    """Wait for the status line the firmware prints once its sockets are open."""
    return board.wait_for("| IP ", timeout)
