# Runs after boot.py (same globals): the relay. Ctrl-C leaves `relay` here.
import app

relay = app.main(globals().get("board"))
