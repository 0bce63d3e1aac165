"""
One-way link latency without netem: an L2 relay between two veth ends in a middle network namespace.

bench:links (bench/lib/netns.ts) joins host A and host B through a namespace M that has no IP stack
of its own on the link: A's veth peer `ma` and B's veth peer `mb` live in M, and this process
forwards every Ethernet frame from one to the other after holding it for DELAY_US microseconds, in
arrival order. Every packet of every protocol is delayed -- data, ACKs, ARP, PyTorch Gloo's and
smolcluster's alike -- so both kernels' TCP sees the round trip 2 x DELAY (slow start, ACK clock,
retransmit timers as on a real link). Bandwidth stays the kernel's `tc tbf` on A's and B's egress.

Frames move with their virtio-net header (PACKET_VNET_HDR), so TCP segmentation offload super-frames
and partial checksums cross the relay as they are, at a few hundred frames per second at Wi-Fi rates.

usage: link_relay.py IFACE_A IFACE_B DELAY_US   (prints 'ready' once both sockets are bound)
"""
import collections
import select
import socket
import sys
import time

ETH_P_ALL = 0x0003
SOL_PACKET = 263
PACKET_VNET_HDR = 15
PACKET_IGNORE_OUTGOING = 23
MAX_FRAME = 10 + 65536 + 64


def open_tap(iface):
    s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
    s.setsockopt(SOL_PACKET, PACKET_VNET_HDR, 1)
    # Our own sends on this interface are not read back as input.
    s.setsockopt(SOL_PACKET, PACKET_IGNORE_OUTGOING, 1)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 << 20)
    s.bind((iface, 0))
    s.setblocking(False)
    return s


def main():
    a, b = open_tap(sys.argv[1]), open_tap(sys.argv[2])
    delay = int(sys.argv[3]) / 1e6
    # Frames waiting to leave, per output socket: (due time, bytes). One fixed delay keeps each FIFO.
    queues = {a: collections.deque(), b: collections.deque()}
    other = {a: b, b: a}
    print('ready', flush=True)
    while True:
        now = time.monotonic()
        for out, q in queues.items():
            while q and q[0][0] <= now:
                try:
                    out.send(q.popleft()[1])
                except (BlockingIOError, OSError):
                    pass  # a full device queue drops the frame, as a link would
        due = [q[0][0] for q in queues.values() if q]
        timeout = max(0.0, min(due) - time.monotonic()) if due else 1.0
        readable, _, _ = select.select([a, b], [], [], timeout)
        arrived = time.monotonic() + delay
        for s in readable:
            q = queues[other[s]]
            while True:
                try:
                    q.append((arrived, s.recv(MAX_FRAME)))
                except BlockingIOError:
                    break


if __name__ == '__main__':
    try:
        main()
    except KeyboardInterrupt:
        pass
