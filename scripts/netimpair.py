#!/usr/bin/env python3
"""netimpair.py - user-space Ethernet frame forwarder between two TAP devices.

Used by scripts/testnet.sh on kernels without the netem qdisc. It opens two
TAP devices (IFF_TAP | IFF_NO_PI) via /dev/net/tun, and copies every frame
read from one to the other, delaying each frame by --delay-ms (one way, per
direction) and dropping --loss percent of frames independently in each
direction. Per-direction ordering is preserved (constant delay + FIFO queue).

The TAP devices are created in the network namespace the process runs in.
Either of them may afterwards be moved to another namespace with
`ip link set TAP netns NS`; the file descriptor stays valid.

The TAP devices are not persistent: they disappear when this process exits.
Links are not brought up here (testnet.sh does that after moving them).

Signals: SIGTERM / SIGINT -> clean exit, SIGUSR1 -> print counters,
SIGHUP -> ignored. Counters are printed to stderr on exit.

Python 3 standard library only.
"""

import argparse
import collections
import errno
import fcntl
import os
import random
import selectors
import signal
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
SIZEOF_IFREQ = 40

READ_BATCH = 256  # max frames read from one TAP per wakeup (fairness)
FRAME_BUF = 65536  # one read returns at most one frame

# errors meaning "the device behind this fd is gone"
FATAL_ERRNOS = {errno.EBADFD, errno.ENXIO, errno.ENODEV, errno.EBADF}


def log(msg):
    sys.stderr.write("netimpair[%d]: %s\n" % (os.getpid(), msg))
    sys.stderr.flush()


def open_tap(name):
    """Create/attach TAP device `name`; return (fd, actual_name)."""
    if len(name.encode()) >= IFNAMSIZ:
        raise ValueError("interface name too long: %r" % name)
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        ifr = struct.pack("16sH", name.encode(), IFF_TAP | IFF_NO_PI)
        ifr += b"\0" * (SIZEOF_IFREQ - len(ifr))
        res = fcntl.ioctl(fd, TUNSETIFF, ifr)
    except OSError:
        os.close(fd)
        raise
    actual = res[:IFNAMSIZ].split(b"\0", 1)[0].decode()
    return fd, actual


class Direction:
    """One direction of forwarding: read from src fd, delay/drop, write to dst fd."""

    def __init__(self, name, src, dst, delay_s, loss_pct, rng, max_queue):
        self.name = name
        self.src = src
        self.dst = dst
        self.delay = delay_s
        self.loss = loss_pct
        self.rng = rng
        self.max_queue = max_queue
        self.queue = collections.deque()  # (due_monotonic, frame)
        self.rx = 0
        self.fwd = 0
        self.lost = 0
        self.overflow = 0
        self.write_err = 0

    def pump(self, now):
        """Read all pending frames (up to READ_BATCH) from src."""
        for _ in range(READ_BATCH):
            try:
                frame = os.read(self.src, FRAME_BUF)
            except BlockingIOError:
                return
            except InterruptedError:
                return
            except OSError as e:
                if e.errno in (errno.EAGAIN, errno.EINTR):
                    return
                if e.errno == errno.EIO:
                    # device down / transient; nothing to read
                    return
                raise
            if not frame:
                return
            self.rx += 1
            if self.loss > 0 and self.rng.random() * 100.0 < self.loss:
                self.lost += 1
                continue
            if len(self.queue) >= self.max_queue:
                self.overflow += 1
                continue
            self.queue.append((now + self.delay, frame))

    def flush(self, now):
        """Write every frame whose due time has passed, in order."""
        q = self.queue
        while q and q[0][0] <= now:
            _, frame = q.popleft()
            try:
                os.write(self.dst, frame)
                self.fwd += 1
            except OSError as e:
                if e.errno in FATAL_ERRNOS:
                    raise
                # EIO (peer link down), EAGAIN, EINVAL (bad frame) ...
                self.write_err += 1

    def next_due(self):
        return self.queue[0][0] if self.queue else None

    def stats(self):
        return "%s rx=%d forwarded=%d dropped_loss=%d dropped_overflow=%d write_errors=%d pending=%d" % (
            self.name, self.rx, self.fwd, self.lost, self.overflow, self.write_err, len(self.queue))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tap-a", required=True, help="first TAP device name")
    ap.add_argument("--tap-b", required=True, help="second TAP device name")
    ap.add_argument("--delay-ms", type=float, default=0.0,
                    help="one-way delay applied in EACH direction (ms)")
    ap.add_argument("--loss", type=float, default=0.0,
                    help="percent of frames dropped, independently in EACH direction")
    ap.add_argument("--seed", type=int, default=None, help="RNG seed (reproducible loss)")
    ap.add_argument("--ready-file", default=None,
                    help="written (atomically) once both TAP devices exist")
    ap.add_argument("--max-queue", type=int, default=20000,
                    help="max frames in flight per direction (excess is dropped)")
    args = ap.parse_args()

    if args.delay_ms < 0:
        ap.error("--delay-ms must be >= 0")
    if not 0.0 <= args.loss <= 100.0:
        ap.error("--loss must be within 0..100")

    stop = []

    def on_stop(signum, _frame):
        stop.append(signum)

    dirs = []

    def on_usr1(_signum, _frame):
        for d in dirs:
            log(d.stats())

    # Self-pipe so signals wake the selector (PEP 475 would otherwise retry).
    wake_r, wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    signal.signal(signal.SIGTERM, on_stop)
    signal.signal(signal.SIGINT, on_stop)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    signal.signal(signal.SIGUSR1, on_usr1)

    try:
        fd_a, name_a = open_tap(args.tap_a)
        fd_b, name_b = open_tap(args.tap_b)
    except (OSError, ValueError) as e:
        log("cannot create TAP devices: %s" % e)
        return 1

    if args.seed is None:
        rng_ab, rng_ba = random.Random(), random.Random()
    else:
        rng_ab, rng_ba = random.Random(args.seed), random.Random(args.seed + 1)
    delay = args.delay_ms / 1000.0
    ab = Direction("%s->%s" % (name_a, name_b), fd_a, fd_b, delay, args.loss, rng_ab, args.max_queue)
    ba = Direction("%s->%s" % (name_b, name_a), fd_b, fd_a, delay, args.loss, rng_ba, args.max_queue)
    dirs.extend([ab, ba])

    # select(2) takes a microsecond timeout (epoll rounds up to whole ms, which
    # would add ~0.5 ms of error per direction); we only ever watch 3 fds.
    sel = selectors.SelectSelector()
    sel.register(fd_a, selectors.EVENT_READ, ab)
    sel.register(fd_b, selectors.EVENT_READ, ba)
    sel.register(wake_r, selectors.EVENT_READ, None)

    log("forwarding %s <-> %s, delay %.3f ms each way, loss %.3f%% each way"
        % (name_a, name_b, args.delay_ms, args.loss))
    if args.ready_file:
        tmp = args.ready_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d %s %s\n" % (os.getpid(), name_a, name_b))
        os.rename(tmp, args.ready_file)
    sys.stdout.write("READY %s %s\n" % (name_a, name_b))
    sys.stdout.flush()

    rc = 0
    try:
        while not stop:
            now = time.monotonic()
            ab.flush(now)
            ba.flush(now)
            due = [t for t in (ab.next_due(), ba.next_due()) if t is not None]
            if due:
                timeout = max(0.0, min(due) - time.monotonic())
            else:
                timeout = None
            for key, _ in sel.select(timeout):
                if key.data is None:
                    try:
                        while os.read(wake_r, 512):
                            pass
                    except OSError:
                        pass
                else:
                    key.data.pump(time.monotonic())
    except OSError as e:
        log("device error, exiting: %s" % e)
        rc = 2
    finally:
        if stop:
            log("stopping on signal %d" % stop[0])
        for d in dirs:
            log(d.stats())
        sel.close()
        os.close(fd_a)
        os.close(fd_b)
    return rc


if __name__ == "__main__":
    sys.exit(main())
