#!/usr/bin/env python3
"""A link emulator over TUN: one-way delay, jitter and random loss for the network lab.

This kernel has no netem (nor fq, sfq, prio or cake), so the lab (scripts/swarm-lab) puts a
namespace between each home and the wan, routes each direction's packets into a TUN device of
their own (policy routing on the incoming interface), and runs this program on both devices.
It reads every packet, drops it with probability LOSS, and writes it back into the same device
DELAY (+ up to JITTER) later; the kernel then routes it on, as if it had arrived there. Packets
of one direction stay in order (jitter only stretches gaps, as on a real access link), and a
queue over --limit packets drops from the tail, as a router buffer does. Rate limits are tc
tbf's job, not this program's.

    linkemu.py --dev up0:12.5:2:0.5 --dev down0:12.5:2:0.5 [--seed N] [--limit 1000]
                    device:delay_ms:jitter_ms:loss_percent

The devices must exist (ip tuntap add mode tun dev NAME) and be up. Counts go to stderr on
SIGTERM: packets passed, dropped by loss, dropped by the queue limit, per device.
"""
import argparse
import collections
import fcntl
import os
import random
import select
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    def __init__(self, spec, rng, limit):
        try:
            name, delay, jitter, loss = spec.split(":")
            self.delay, self.jitter, self.loss = float(delay) / 1e3, float(jitter) / 1e3, float(loss) / 100
        except ValueError:
            sys.exit(f"linkemu: --dev {spec!r}: expected NAME:DELAY_MS:JITTER_MS:LOSS_PERCENT")
        if not (0 <= self.loss < 1 and self.delay >= 0 and self.jitter >= 0):
            sys.exit(f"linkemu: --dev {spec!r}: delay and jitter >= 0, loss from 0 to under 100")
        self.name, self.rng, self.limit = name, rng, limit
        self.fd = open_tun(name)
        self.queue = collections.deque()  # (due, packet), due non-decreasing
        self.passed = self.lost = self.overflow = 0

    def receive(self, now):
        while True:
            try:
                packet = os.read(self.fd, 65535)
            except BlockingIOError:
                return
            if self.rng.random() < self.loss:
                self.lost += 1
                continue
            if len(self.queue) >= self.limit:
                self.overflow += 1
                continue
            due = now + self.delay + self.rng.random() * self.jitter
            if self.queue and due < self.queue[-1][0]:
                due = self.queue[-1][0]
            self.queue.append((due, packet))

    def release(self, now):
        while self.queue and self.queue[0][0] <= now:
            _, packet = self.queue.popleft()
            try:
                os.write(self.fd, packet)
                self.passed += 1
            except OSError:
                self.overflow += 1

    def next_due(self):
        return self.queue[0][0] if self.queue else None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dev", action="append", required=True, help="NAME:DELAY_MS:JITTER_MS:LOSS_PERCENT")
    ap.add_argument("--seed", type=int, default=None, help="random seed (loss and jitter)")
    ap.add_argument("--limit", type=int, default=1000, help="packets queued per direction at most")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    dirs = [Direction(spec, rng, args.limit) for spec in args.dev]
    by_fd = {d.fd: d for d in dirs}
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    print("linkemu: running on " + ", ".join(d.name for d in dirs), file=sys.stderr, flush=True)
    while not stop:
        now = time.monotonic()
        dues = [d.next_due() for d in dirs if d.next_due() is not None]
        timeout = max(0.0, min(dues) - now) if dues else 1.0
        try:
            ready, _, _ = select.select(list(by_fd), [], [], timeout)
        except InterruptedError:
            continue
        now = time.monotonic()
        for fd in ready:
            by_fd[fd].receive(now)
        for d in dirs:
            d.release(now)
    for d in dirs:
        print(f"linkemu: {d.name}: passed {d.passed}, lost {d.lost}, queue drops {d.overflow}", file=sys.stderr)


if __name__ == "__main__":
    main()
