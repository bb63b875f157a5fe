# The seed contender of `make bench-board`, deployed as main.py: the WIZnet tutorial's loop
# ("UDP Multicast with MicroPython on WIZnet", ../shared/seeds), its code as the tutorial has it:
# 2 MHz SPI, WIZNET5K with 3 pins (no INTN), recvfrom(1024), a print before and after each send.
# Changed, and only this: the imports (the tutorial leaves them out), the device's address
# (moved from 192.168.11.104/24 to the benchmark's 198.18.0.10/15, gateway and DNS 0.0.0.0).
import socket
import struct

import network
from machine import SPI, Pin

DEVICE_IP = "198.18.0.10"
GATEWAY = "0.0.0.0"
NETMASK = "255.254.0.0"
DNS = "0.0.0.0"


def wiznet_init():
    try:
        spi = SPI(0, 2_000_000, mosi=Pin(19), miso=Pin(16), sck=Pin(18))
        nic = network.WIZNET5K(spi, Pin(17), Pin(20))
        nic.active(True)
        nic.ifconfig((DEVICE_IP, NETMASK, GATEWAY, DNS))
        print('IP address :', nic.ifconfig())
    except Exception as e:
        print("Error in wiznet_init:", e)
        raise


def ip_to_bytes(ip_str):
    return bytes(map(int, ip_str.split('.')))


def udp_multicast_init(multicast_ip='224.0.10.1', port=50000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((multicast_ip, port))
    mreq = struct.pack('4sl', ip_to_bytes(multicast_ip))
    s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
    return s


def main():
    wiznet_init()
    sock = udp_multicast_init()
    while True:
        message, addr = sock.recvfrom(1024)
        print(f"Received: {message} from {addr}")
        sock.sendto(message, ('224.0.10.2', 50000))
        print("Data sent.")


main()
