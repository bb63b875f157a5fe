"""`python -m bench.emu --quick` (the emulated-board benchmark) end to end, once per image named
by MCAST_RELAY_FIRMWARE; without one it skips, saying so. Quick mode claims no figure: this
checks that every part runs and that what comes out is what went in."""

import json
import subprocess
import sys

import pytest

from host_tests.boards import images
from tools.emu import firmware

from .conftest import REPO


@pytest.mark.parametrize("image", images("the emulated-board benchmark"))
def test_bench_board_quick(image, tmp_path):
    fw = firmware.identify(image)
    argv = [sys.executable, "-m", "bench.emu", "--quick", "--firmware", str(image),
            "--out", str(tmp_path)]
    elf = image.with_suffix(".elf")
    if elf.exists():  # the profile part too, when the image's ELF lies next to it
        argv += ["--elf", str(elf)]
    r = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=480)
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    res = json.loads((tmp_path / "bench-board.json").read_text())
    run = res["runs"][fw.board]
    assert run["firmware"]["sha256"] == fw.sha256
    for key in ("seed", "bare", "relay"):
        sizes = run["contenders"][key][str(20_000_000)]["sizes"]
        for size, got in sizes.items():
            t = got["rate"]["trials"][0]
            assert t["forwarded"] > 0, (key, size, t)
            assert t["duplicates"] == 0
            assert t["sources"] == ["198.18.0.10"]
            if key != "seed" or size == "200":
                assert t["intact"] == t["forwarded"], (key, size, t)
            else:  # the seed reads recvfrom(1024): a 1472-byte datagram leaves cut
                assert t["intact"] == 0
            if key == "relay":
                assert t["forwarded"] == t["sent"], t  # 100/s is far below its capacity
                flood = got["flood"]["points"][0]
                assert flood["probes_forwarded"] > 0, flood
    for size, curve in run["repl"]["sizes"].items():
        assert curve["points"][0]["repl_answer_ms"] is not None, (size, curve)
    if elf.exists():
        prof = run["profile"]["relay"]
        assert prof["samples"] > 0 and prof["forwarded"] > 0
        assert not any(f.startswith("(unknown") for f in sorted(
            prof["functions"], key=prof["functions"].get)[-10:])
    md = (tmp_path / "bench.md").read_text()
    assert "## On the emulated board" in md and fw.sha256 in md
