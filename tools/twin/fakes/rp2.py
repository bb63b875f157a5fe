# Stand-in for the rp2 port's `rp2` module: the BOOTSEL button (control-file
# key "bootsel": true while the button is held).
import twinctl


def bootsel_button():
    return 1 if twinctl.control().get("bootsel") else 0
