# Runs first at every start: config.json + NIC bring-up. Never raises.
import app

board = app.boot()
