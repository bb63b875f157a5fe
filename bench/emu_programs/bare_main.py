# The bare contender of `make bench-board`, deployed as main.py (boot.py emptied): the plainest
# forwarder on the board's lwIP sockets. The NIC as the relay sets it up (SPI0 at SPI_HZ, the
# board's pins, WIZNET5K with INTN), then a blocking recvfrom on a socket bound to the input
# group and a sendto from a second socket; nothing counted, checked or cached. The benchmark
# rewrites the constants below (SPI_HZ for the SPI clock).
import socket

import network
from machine import SPI, Pin

SPI_HZ = 20_000_000
IP = "198.18.0.10"
NETMASK = "255.254.0.0"
IN_GROUP = "224.0.10.1"
OUT_GROUP = "224.0.10.2"
PORT = 50000
BUF = 1473  # max_datagram + 1, as the relay reads

spi = SPI(0, baudrate=SPI_HZ, sck=Pin(18), mosi=Pin(19), miso=Pin(16))
nic = network.WIZNET5K(spi, Pin(17), Pin(20), Pin(21))
nic.active(True)
nic.ifconfig((IP, NETMASK, "0.0.0.0", "0.0.0.0"))
rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
rx.bind((IN_GROUP, PORT))
rx.setsockopt(0, socket.IP_ADD_MEMBERSHIP, bytes(map(int, IN_GROUP.split("."))) + bytes(4))
tx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
dst = (OUT_GROUP, PORT)
print("bare: forwarding")
while True:
    data, addr = rx.recvfrom(BUF)
    tx.sendto(data, dst)
