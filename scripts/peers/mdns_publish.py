"""mDNS test publisher driven line by line on stdin (python-zeroconf; IPv4 by default).

Run it ONLY inside a test network namespace, never in the machine's own one (it would speak
on the real interface):

    ip netns exec P-h1 $MCP_SCOUT_PEERS/mdns/bin/python scripts/peers/mdns_publish.py \
        --interface-ip 10.99.0.11

With `--ip-version 6` it speaks only over IPv6 (ff02::fb, from the interface that holds
--interface-ip's twin, given as --interface-ip6), and with `all` over both; `announce` then
takes an IPv6 address, which is published as an AAAA record.

It prints `READY <ip>` once zeroconf is up, then reads one command per line on stdin and
answers each with exactly one stdout line: `OK <the command> [key=value ...]` or
`ERR <reason>`. Words are split shell-style (shlex), so a TXT value may be quoted; the OK
line repeats them re-joined by shlex.join, so a plain command comes back exactly as sent.
Nothing else is written to stdout; zeroconf's logs go to stderr (errors only,
unless --verbose).

    announce NAME TYPE IP PORT [key=value ...]   register NAME.TYPE (host NAME.local. -> IP,
                                                 TXT from the key=value words); acked after
                                                 register_service returns (probing, then the
                                                 3 announcements). Again with the same
                                                 NAME TYPE: updates it (extra: updated=1).
    withdraw NAME TYPE                           unregister: 3 goodbyes (TTL 0, 125 ms apart),
                                                 acked after the last one is sent.
    flood N TYPE IP PORT                         register flood-0..flood-(N-1) (N <= 10000),
                                                 host flood-<ip-dashed>.local., TXT path=/mcp
                                                 i=<k>, no probing; extra: count= elapsed_s=
    bigtxt NAME TYPE IP PORT SIZE                like announce with TXT `big=<SIZE x 'x'>`;
                                                 zeroconf (and DNS) allow <= 255 bytes per TXT
                                                 string, so SIZE <= 251; above: ERR.
    manytxt NAME TYPE IP PORT TOTAL              TXT of 255-byte strings k000=xxx.., TOTAL bytes
                                                 of TXT rdata in all (<= 8000).
    raw HEX                                      send one UDP datagram (<= 9000 bytes) from
                                                 IP:5353 to 224.0.0.251:5353; extra: bytes=
    garbage N [SEED]                             N (<= 100000) datagrams of 1..1400 random
                                                 bytes each, same path; extra: sent= bytes=
    ping                                         OK ping
    quit                                         unregister everything (goodbyes), exit 0.

EOF on stdin = quit. SIGTERM/SIGINT also unregister everything and exit 0.
TYPE is a full service type such as `_mcp._tcp.local.` (a missing final dot is added).
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import logging
import os
import random
import shlex
import signal
import socket
import sys
import time

from zeroconf import IPVersion, ServiceInfo, Zeroconf

MDNS_ADDR = "224.0.0.251"
MDNS_PORT = 5353
MAX_FLOOD = 10_000
FLOOD_IN_FLIGHT = 1000  # registrations announced at once (1,000: one burst, ~0.6 s)
MAX_RAW = 9000
MAX_GARBAGE = 100_000
MAX_MANYTXT = 8000


class CmdError(Exception):
    pass


class Quit(Exception):
    pass


def out(line: str) -> None:
    sys.stdout.write(line.replace("\n", " ") + "\n")
    sys.stdout.flush()


def ns_id(path: str) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_dev, st.st_ino)


def refuse_own_namespace() -> None:
    """Exit unless this is a named test namespace (`ip netns`) or a loopback-only one.

    PID 1's namespace cannot always be read (containers deny /proc/1/ns even to root), so
    the test is positive: the namespace must be one of /run/netns/* (what `ip netns exec`
    enters), or have no interface but `lo` (`unshare -n`). If PID 1's namespace is
    readable and is ours, refuse in any case.
    """
    own = ns_id("/proc/self/ns/net")
    if own is None:
        sys.exit("mdns_publish: cannot read /proc/self/ns/net; refusing to run")
    if own == ns_id("/proc/1/ns/net"):
        sys.exit("mdns_publish: refusing to run mDNS in the machine's own network namespace")
    if {name for _, name in socket.if_nameindex()} <= {"lo"}:
        return
    try:
        named = os.listdir("/run/netns")
    except OSError:
        named = []
    if any(ns_id(os.path.join("/run/netns", n)) == own for n in named[:10_000]):
        return
    sys.exit(
        "mdns_publish: refusing to run mDNS outside a test namespace (this namespace has "
        "real interfaces and is not one of /run/netns/*); use `ip netns exec <test-ns> ...` "
        "or a loopback-only namespace (unshare -n)"
    )


def check_local_ipv4(ip: str) -> None:
    try:
        addr = ipaddress.IPv4Address(ip)
    except ValueError:
        sys.exit(f"mdns_publish: --interface-ip must be an IPv4 address, not {ip!r}")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.bind((str(addr), 0))
        except OSError as e:
            sys.exit(f"mdns_publish: {ip} is not an address of this namespace ({e.strerror})")


def norm_type(type_: str) -> str:
    return type_ if type_.endswith(".") else type_ + "."


def parse_port(s: str) -> int:
    try:
        port = int(s)
    except ValueError:
        raise CmdError(f"bad port {s!r}") from None
    if not 0 <= port <= 65535:
        raise CmdError(f"port out of range: {port}")
    return port


def parse_ip(s: str) -> bytes:
    """An IPv4 or IPv6 address, packed (an AAAA record for IPv6)."""
    try:
        return ipaddress.ip_address(s).packed
    except ValueError:
        raise CmdError(f"bad IP address {s!r}") from None


def ifindex_of(ip: str) -> int:
    """The index of the interface that holds `ip` (from `ip -o addr`)."""
    import subprocess

    out = subprocess.run(["ip", "-o", "addr", "show"], capture_output=True, text=True, check=True)
    for line in out.stdout.splitlines():
        f = line.split()
        if len(f) > 3 and f[3].split("/")[0] == ip:
            return socket.if_nametoindex(f[1])
    sys.exit(f"mdns_publish: {ip} is not an address of this namespace")


def parse_count(s: str, what: str, lo: int, hi: int) -> int:
    try:
        n = int(s)
    except ValueError:
        raise CmdError(f"bad {what} {s!r}") from None
    if not lo <= n <= hi:
        raise CmdError(f"{what} must be in {lo}..{hi}, not {n}")
    return n


def parse_props(words: list[str]) -> dict[str, str | None]:
    props: dict[str, str | None] = {}
    for w in words:
        key, eq, value = w.partition("=")
        if not key:
            raise CmdError(f"bad TXT item {w!r} (want key=value)")
        props[key] = value if eq else None
    return props


class Publisher:
    def __init__(self, ip: str, probe: bool, ip_version: str = "4", ip6: str | None = None) -> None:
        self.ip = ip
        self.probe = probe
        if ip_version == "4":
            self.zc = Zeroconf(interfaces=[ip], ip_version=IPVersion.V4Only)
        else:
            if ip6 is None:
                sys.exit("mdns_publish: --ip-version 6 or all needs --interface-ip6")
            index = ifindex_of(ip6)
            if ip_version == "6":
                self.zc = Zeroconf(interfaces=[index], ip_version=IPVersion.V6Only)
            else:
                self.zc = Zeroconf(interfaces=[ip, index], ip_version=IPVersion.All)
        self.services: dict[tuple[str, str], ServiceInfo] = {}

    # -- helpers ---------------------------------------------------------------------------

    def _run(self, coro, timeout: float):
        assert self.zc.loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self.zc.loop)
        return fut.result(timeout)

    def _info(self, name: str, type_: str, ip: str, port: int, props, server: str) -> ServiceInfo:
        packed = parse_ip(ip)
        try:
            return ServiceInfo(
                type_,
                f"{name}.{type_}",
                addresses=[packed],
                port=port,
                properties=props,
                server=server,
            )
        except Exception as e:  # noqa: BLE001 - report zeroconf's refusal verbatim
            raise CmdError(f"zeroconf refused the service: {type(e).__name__}: {e}") from None

    def _register(self, key: tuple[str, str], info: ServiceInfo) -> str:
        if key in self.services:
            try:
                self.zc.update_service(info)
            except Exception as e:  # noqa: BLE001
                raise CmdError(f"update_service failed: {type(e).__name__}: {e}") from None
            self.services[key] = info
            return " updated=1"
        try:
            self.zc.register_service(info, cooperating_responders=not self.probe)
        except Exception as e:  # noqa: BLE001 - e.g. NonUniqueNameException, BadTypeInName
            raise CmdError(f"register_service failed: {type(e).__name__}: {e}") from None
        self.services[key] = info
        return ""

    async def _send_datagrams(self, payloads) -> tuple[int, int]:
        senders = [s for s in self.zc.engine.senders if not s.is_ipv6]
        if not senders:
            raise CmdError("zeroconf has no IPv4 sender socket")
        transport = senders[0].transport
        sent = total = 0
        for data in payloads:
            transport.sendto(data, (MDNS_ADDR, MDNS_PORT))
            sent += 1
            total += len(data)
            if sent % 50 == 0:
                # let the kernel drain; bounded: at most 200 x 5 ms per 50 datagrams
                for _ in range(200):
                    if transport.get_write_buffer_size() == 0:
                        break
                    await asyncio.sleep(0.005)
                await asyncio.sleep(0)
        return sent, total

    # -- commands --------------------------------------------------------------------------

    def announce(self, a: list[str]) -> str:
        if len(a) < 4:
            raise CmdError("usage: announce NAME TYPE IP PORT [key=value ...]")
        name, type_, ip, port = a[0], norm_type(a[1]), a[2], parse_port(a[3])
        info = self._info(name, type_, ip, port, parse_props(a[4:]), f"{name}.local.")
        return self._register((name, type_), info)

    def withdraw(self, a: list[str]) -> str:
        if len(a) != 2:
            raise CmdError("usage: withdraw NAME TYPE")
        key = (a[0], norm_type(a[1]))
        info = self.services.get(key)
        if info is None:
            raise CmdError(f"not announced: {a[0]} {key[1]}")

        async def go() -> None:
            # Zeroconf.unregister_service returns after the first goodbye is queued; wait
            # for all three (125 ms apart) so the ack means "goodbyes sent".
            done = await self.zc.async_unregister_service(info)
            await done

        try:
            self._run(go(), timeout=10)
        except Exception as e:  # noqa: BLE001
            raise CmdError(f"unregister failed: {type(e).__name__}: {e}") from None
        del self.services[key]
        return ""

    def flood(self, a: list[str]) -> str:
        if len(a) != 4:
            raise CmdError("usage: flood N TYPE IP PORT")
        n = parse_count(a[0], "N", 1, MAX_FLOOD)
        type_, ip, port = norm_type(a[1]), a[2], parse_port(a[3])
        server = f"flood-{ip.replace('.', '-')}.local."
        infos = []
        for i in range(n):
            key = (f"flood-{i}", type_)
            if key in self.services:
                raise CmdError(f"flood-{i}.{type_} already announced")
            infos.append((key, self._info(key[0], type_, ip, port, {"path": "/mcp", "i": str(i)}, server)))

        async def go() -> None:
            sem = asyncio.Semaphore(FLOOD_IN_FLIGHT)

            async def one(info: ServiceInfo) -> None:
                async with sem:
                    done = await self.zc.async_register_service(info, cooperating_responders=True)
                    await done

            await asyncio.gather(*(one(info) for _, info in infos))

        t0 = time.monotonic()
        try:
            self._run(go(), timeout=60 + n * 0.05)
        except Exception as e:  # noqa: BLE001
            # register what made it into zeroconf's registry, so quit withdraws it
            for key, info in infos:
                if self.zc.registry.async_get_info_name(info.key) is not None:
                    self.services[key] = info
            raise CmdError(f"flood failed: {type(e).__name__}: {e}") from None
        elapsed = time.monotonic() - t0
        for key, info in infos:
            self.services[key] = info
        return f" count={n} elapsed_s={elapsed:.3f}"

    def bigtxt(self, a: list[str]) -> str:
        if len(a) != 5:
            raise CmdError("usage: bigtxt NAME TYPE IP PORT SIZE")
        name, type_, ip, port = a[0], norm_type(a[1]), a[2], parse_port(a[3])
        size = parse_count(a[4], "SIZE", 0, 1_000_000)
        try:
            info = self._info(name, type_, ip, port, {"big": "x" * size}, f"{name}.local.")
        except CmdError as e:
            raise CmdError(
                f"SIZE {size} too big: one TXT string holds at most 255 bytes, so `big=` leaves"
                f" 251 for the value ({e})"
            ) from None
        return self._register((name, type_), info) + f" txt_bytes={len(info.text)}"

    def manytxt(self, a: list[str]) -> str:
        if len(a) != 5:
            raise CmdError("usage: manytxt NAME TYPE IP PORT TOTAL")
        name, type_, ip, port = a[0], norm_type(a[1]), a[2], parse_port(a[3])
        total = parse_count(a[4], "TOTAL", 1, MAX_MANYTXT)
        props: dict[str, str] = {}
        left, i = total, 0
        while left > 0 and i < 1000:
            # one length byte + "kNNN=" (5) + value, at most 255 bytes after the length byte
            chunk = min(left, 256)
            props[f"k{i:03d}"] = "x" * max(chunk - 6, 0)
            left -= chunk
            i += 1
        info = self._info(name, type_, ip, port, props, f"{name}.local.")
        return self._register((name, type_), info) + f" txt_bytes={len(info.text)} strings={i}"

    def raw(self, a: list[str]) -> str:
        if len(a) != 1:
            raise CmdError("usage: raw HEX")
        try:
            data = bytes.fromhex(a[0].replace(":", ""))
        except ValueError:
            raise CmdError("bad hex") from None
        if not 1 <= len(data) <= MAX_RAW:
            raise CmdError(f"datagram must be 1..{MAX_RAW} bytes, not {len(data)}")
        _, total = self._run(self._send_datagrams([data]), timeout=10)
        return f" bytes={total}"

    def garbage(self, a: list[str]) -> str:
        if len(a) not in (1, 2):
            raise CmdError("usage: garbage N [SEED]")
        n = parse_count(a[0], "N", 1, MAX_GARBAGE)
        seed = parse_count(a[1], "SEED", 0, 2**63) if len(a) == 2 else None
        rng = random.Random(seed)
        payloads = (rng.randbytes(rng.randint(1, 1400)) for _ in range(n))
        sent, total = self._run(self._send_datagrams(payloads), timeout=30 + n * 0.01)
        return f" sent={sent} bytes={total}"

    def close(self) -> None:
        try:
            # also covers a registration that a signal interrupted before its ack
            self.zc.unregister_all_services()
        except Exception as e:  # noqa: BLE001
            print(f"mdns_publish: unregister_all_services: {type(e).__name__}: {e}", file=sys.stderr)
        self.services.clear()
        self.zc.close()


COMMANDS = ("announce", "withdraw", "flood", "bigtxt", "manytxt", "raw", "garbage")


def serve(pub: Publisher) -> None:
    for _ in range(10_000_000):  # bounded; a test sends a few thousand lines at most
        line = sys.stdin.readline()
        if not line:
            return  # EOF
        try:
            words = shlex.split(line)
        except ValueError as e:
            out(f"ERR bad quoting: {e}")
            continue
        if not words:
            continue
        cmd, args = words[0], words[1:]
        echo = shlex.join(words)
        if cmd == "quit":
            raise Quit
        if cmd == "ping":
            out("OK ping")
            continue
        if cmd not in COMMANDS:
            out(f"ERR unknown command {cmd!r} (want {', '.join(COMMANDS)}, ping or quit)")
            continue
        try:
            extra = getattr(pub, cmd)(args)
        except CmdError as e:
            out(f"ERR {e}")
            continue
        except Exception as e:  # noqa: BLE001 - one bad command never kills the peer
            out(f"ERR {cmd} failed: {type(e).__name__}: {e}")
            continue
        out(f"OK {echo}{extra}")


def main() -> int:
    ap = argparse.ArgumentParser(description="mDNS test publisher (stdin commands, stdout acks)")
    ap.add_argument("--interface-ip", required=True, help="IPv4 address of the interface to use")
    ap.add_argument(
        "--ip-version",
        choices=["4", "6", "all"],
        default="4",
        help="speak mDNS over IPv4 (224.0.0.251), IPv6 (ff02::fb) or both",
    )
    ap.add_argument("--interface-ip6", help="IPv6 address of the interface (with --ip-version 6/all)")
    ap.add_argument(
        "--no-probe",
        action="store_true",
        help="announce/bigtxt/manytxt skip RFC 6762 probing (about 1.5 s faster each)",
    )
    ap.add_argument("--verbose", action="store_true", help="zeroconf logs at DEBUG on stderr")
    args = ap.parse_args()

    refuse_own_namespace()
    check_local_ipv4(args.interface_ip)
    logging.basicConfig(stream=sys.stderr, format="mdns_publish: %(name)s: %(message)s")
    logging.getLogger("zeroconf").setLevel(logging.DEBUG if args.verbose else logging.ERROR)

    def on_signal(signum, _frame):
        raise Quit

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    pub = Publisher(
        args.interface_ip, probe=not args.no_probe, ip_version=args.ip_version, ip6=args.interface_ip6
    )
    try:
        pub._run(pub.zc.async_wait_for_start(), timeout=15)
        out(f"READY {args.interface_ip}")
        serve(pub)
    except Quit:
        pass
    except BrokenPipeError:
        # nobody reads our acks any more; keep the interpreter's final flush quiet
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    finally:
        # no signal may interrupt the goodbyes
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        pub.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
