#!/usr/bin/env python3
"""Open N listening TCP sockets spread pseudo-randomly over an IPv4 block.

Used by scripts/bench-sweep.sh as the ground truth for sweep benchmarks.

    listeners.py --cidr 127.77.0.0/16 --ports 3000,8000,8080 --count 300 --seed 1 \
        --expect expected.txt --ready-file ready

The (ip, port) set depends only on (address pool, ports, count, seed), so
several instances started with the same arguments agree on it.  With
--bind-ip, an instance binds only the part of the set that lives on that
address (one instance per host namespace) while --expect still lists the whole
set.  --plan-only writes --expect and exits without listening.

After every socket listens, --ready-file is created (atomically).  Connections
are then accepted and closed at once (selectors), so backlogs never fill, until
SIGTERM/SIGINT or --max-seconds.  Python standard library only.
"""

import argparse
import errno
import ipaddress
import os
import random
import resource
import selectors
import signal
import socket
import sys
import time


def parse_ports(spec):
    ports = []
    for tok in spec.split(","):
        tok = tok.strip()
        if not tok:
            continue
        if "-" in tok:
            lo, hi = (int(x) for x in tok.split("-", 1))
        else:
            lo = hi = int(tok)
        if not (1 <= lo <= hi <= 65535):
            raise ValueError(f"bad port range {tok!r}")
        ports.extend(range(lo, hi + 1))
    # de-duplicate, keep order
    return list(dict.fromkeys(ports))


def address_pool(args):
    """Return (first_addr_int, n_addrs) or an explicit list of ints."""
    if args.ips:
        return [int(ipaddress.IPv4Address(x.strip())) for x in args.ips.split(",") if x.strip()]
    net = ipaddress.IPv4Network(args.cidr, strict=False)
    first, n = int(net.network_address), net.num_addresses
    if net.prefixlen <= 30:  # skip network and broadcast addresses
        first, n = first + 1, n - 2
    return range(first, first + n)


def plan(args):
    pool = address_pool(args)
    ports = parse_ports(args.ports)
    space = len(pool) * len(ports)
    if args.count > space:
        raise SystemExit(f"--count {args.count} > address x port space {space}")
    rng = random.Random(args.seed)
    picks = rng.sample(range(space), args.count)  # lazy over range: fine for /8
    out = set()
    for i in picks:
        out.add((pool[i // len(ports)], ports[i % len(ports)]))
    return sorted(out)


def write_atomic(path, text):
    tmp = f"{path}.tmp.{os.getpid()}"
    with open(tmp, "w", encoding="ascii") as f:
        f.write(text)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--cidr", help="IPv4 block to spread listeners over")
    src.add_argument("--ips", help="comma list of IPv4 addresses to spread listeners over")
    ap.add_argument("--ports", required=True, help="comma list, ranges allowed")
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--expect", help="write the whole expected set here (sorted ip:port lines)")
    ap.add_argument("--ready-file", help="created once every socket listens")
    ap.add_argument("--bind-ip", action="append", default=[],
                    help="only bind the entries on this address (repeatable)")
    ap.add_argument("--plan-only", action="store_true", help="write --expect and exit")
    ap.add_argument("--backlog", type=int, default=1024)
    ap.add_argument("--max-seconds", type=float, default=3600.0,
                    help="exit by itself after this long (safety bound)")
    args = ap.parse_args()

    entries = plan(args)
    if args.expect:
        # sorted as plain text (byte order), which is what LC_ALL=C sort/comm want
        lines = sorted(f"{ipaddress.IPv4Address(a)}:{p}" for a, p in entries)
        write_atomic(args.expect, "".join(line + "\n" for line in lines))
    if args.plan_only:
        return 0

    if args.bind_ip:
        wanted = {int(ipaddress.IPv4Address(x)) for x in args.bind_ip}
        entries = [e for e in entries if e[0] in wanted]

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = len(entries) + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))

    stop = {"flag": False}

    def on_signal(_signo, _frame):
        stop["flag"] = True

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    sel = selectors.DefaultSelector()
    socks = []
    for a, p in entries:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((str(ipaddress.IPv4Address(a)), p))
        except OSError as e:
            print(f"listeners.py: bind {ipaddress.IPv4Address(a)}:{p}: {e}", file=sys.stderr)
            return 2
        s.listen(args.backlog)
        s.setblocking(False)
        sel.register(s, selectors.EVENT_READ)
        socks.append(s)

    if args.ready_file:
        write_atomic(args.ready_file, f"{os.getpid()} {len(socks)}\n")
    print(f"listeners.py: {len(socks)} listening (pid {os.getpid()})", file=sys.stderr)

    accepted = 0
    deadline = time.monotonic() + args.max_seconds
    while not stop["flag"] and time.monotonic() < deadline:
        try:
            ready = sel.select(timeout=0.5)
        except InterruptedError:
            continue
        for key, _ in ready:
            ls = key.fileobj
            for _ in range(256):  # bounded drain of this backlog
                try:
                    c, _addr = ls.accept()
                except (BlockingIOError, InterruptedError):
                    break
                except OSError as e:
                    if e.errno in (errno.EMFILE, errno.ENFILE, errno.ECONNABORTED):
                        break
                    raise
                accepted += 1
                c.close()

    for s in socks:
        sel.unregister(s)
        s.close()
    print(f"listeners.py: stopped after {accepted} accepted connections", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
