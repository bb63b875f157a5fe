# mcast-relay's lib/ as frozen modules, in MicroPython's manifest format (see README.md here).
# Relative paths in a manifest are resolved from this file's folder.
import os  # noqa: F401  (the manifest runs as Python inside MicroPython's build)

# Everything the port freezes by default (asyncio, onewire, ...): keep it.
include("$(PORT_DIR)/boards/manifest.py")  # noqa: F821

with open("../lib/version.py") as _f:  # the one source of the version
    _version = [_line.split('"')[1] for _line in _f if _line.startswith("VERSION")][0]
metadata(description="mcast-relay: UDP multicast relay for RP2040 + WIZnet", version=_version)  # noqa: F821

# Every device module, as a top-level module (import relay, import config, ...),
# the same names /lib gives them. boot.py, main.py and config.json stay on the
# board's filesystem (`python -m tools deploy --no-lib` copies just those).
for _name in sorted(os.listdir("../lib")):
    if _name.endswith(".py"):
        module(_name, base_path="../lib")  # noqa: F821
