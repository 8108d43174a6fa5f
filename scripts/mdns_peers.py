#!/usr/bin/env python3
"""python-zeroconf as a real mDNS/DNS-SD peer for cloudy's interop tests.

Run it with the test venv's python (scripts/deps.sh mdns installs
python-zeroconf there; default /opt/cloudy-test-venv/bin/python), inside
a network namespace:

  publish  --name N --type _http._tcp --port P [--txt k=v ...] [--host H]
           [--addr A ...] [--duration S]
      Register the service (python-zeroconf probes and announces), print one
      JSON line {"event": "registered", ...}, then wait for SIGTERM/SIGINT
      or --duration; unregister (goodbye, TTL 0), print
      {"event": "unregistered"} and exit 0. SIGKILL leaves no goodbye.
  browse   --type T [--type T2 ...] [--timeout S] [--until NAME] [--stream]
      Browse and resolve. Default: after --timeout (or as soon as an
      instance named --until is resolved) print one JSON array of resolved
      services. --stream: print one JSON line per event as it happens
      ({"event": "added"|"updated"|"removed", ...}) until --timeout.
  resolve  --name HOST.local [--timeout S]
      Resolve a host name (A/AAAA); print {"name", "addresses"}; exit 1 if
      nothing answered in time.
  types    [--timeout S]
      Service type enumeration (_services._dns-sd._udp.local); print a
      JSON array of types.

Common options: --iface-addr ADDR (repeatable) restricts python-zeroconf
to the interfaces holding these addresses (default: all; a namespace's lo
has no multicast, so pass the test interface's address); --ipv6 also uses
IPv6 (default IPv4 only).

A resolved service is {"name": instance, "fullname", "type", "host",
"addresses": [...], "port", "txt": ["k=v", ...]}. Every command is
bounded in time (--timeout/--duration, at most 600 s); errors go to
stderr with exit 2.
"""

import argparse
import json
import os
import queue
import signal
import sys
import threading
import time

try:
    from zeroconf import (
        AddressResolver,
        IPVersion,
        InterfaceChoice,
        ServiceBrowser,
        ServiceInfo,
        ServiceStateChange,
        Zeroconf,
        ZeroconfServiceTypes,
    )
except ImportError as e:  # pragma: no cover - environment problem
    print(f"mdns_peers.py: python-zeroconf missing ({e}); run scripts/deps.sh mdns", file=sys.stderr)
    sys.exit(2)

MAX_SECONDS = 600.0


def emit(obj):
    sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
    sys.stdout.flush()


def bounded(s):
    return max(0.0, min(float(s), MAX_SECONDS))


def make_zc(args):
    interfaces = args.iface_addr if args.iface_addr else InterfaceChoice.All
    ipv = IPVersion.All if args.ipv6 else IPVersion.V4Only
    return Zeroconf(interfaces=interfaces, ip_version=ipv)


def fqdn(name):
    return name if name.endswith(".") else name + "."


def full_type(t):
    t = fqdn(t)
    return t if t.endswith(".local.") else t.rstrip(".") + ".local."


def txt_list(info):
    out = []
    # info.text is the raw TXT rdata: length-prefixed strings.
    raw = info.text or b""
    i = 0
    while i < len(raw):
        n = raw[i]
        s = raw[i + 1 : i + 1 + n]
        i += 1 + n
        if s:
            out.append(s.decode("utf-8", "replace"))
    return out


def info_json(info, type_):
    name = info.name
    suffix = "." + type_
    instance = name[: -len(suffix)] if name.endswith(suffix) else name
    return {
        "name": instance,
        "fullname": name,
        "type": type_,
        "host": info.server,
        "addresses": info.parsed_scoped_addresses(),
        "port": info.port,
        "txt": txt_list(info),
    }


def cmd_publish(args):
    type_ = full_type(args.type)
    host = fqdn(args.host or f"zeroconf-{os.getpid()}.local")
    addrs = args.addr or args.iface_addr
    if not addrs:
        print("mdns_peers.py publish: give --addr or --iface-addr", file=sys.stderr)
        return 2
    props = {}
    for kv in args.txt or []:
        k, sep, v = kv.partition("=")
        props[k] = v if sep else None
    info = ServiceInfo(
        type_,
        f"{args.name}.{type_}",
        port=args.port,
        properties=props,
        server=host,
        parsed_addresses=addrs,
    )
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    zc = make_zc(args)
    try:
        zc.register_service(info, allow_name_change=args.allow_rename)
        emit({"event": "registered", "name": info.name, "type": type_, "host": host,
              "port": args.port, "addresses": addrs, "txt": args.txt or []})
        stop.wait(bounded(args.duration))
        zc.unregister_service(info)
        emit({"event": "unregistered", "name": info.name})
    finally:
        zc.close()
    return 0


class Collector:
    """Browser callbacks go to a queue; the main thread resolves."""

    def __init__(self):
        self.events = queue.Queue()

    def handler(self, zeroconf, service_type, name, state_change):
        self.events.put((service_type, name, state_change))


def cmd_browse(args):
    types = [full_type(t) for t in args.type]
    deadline = time.monotonic() + bounded(args.timeout)
    zc = make_zc(args)
    col = Collector()
    found = {}
    try:
        browser = ServiceBrowser(zc, types, handlers=[col.handler])
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            try:
                type_, name, change = col.events.get(timeout=min(left, 0.2))
            except queue.Empty:
                continue
            if change is ServiceStateChange.Removed:
                found.pop(name, None)
                if args.stream:
                    emit({"event": "removed", "fullname": name, "type": type_})
                continue
            info = ServiceInfo(type_, name)
            wait_ms = int(max(1.0, min(3.0, deadline - time.monotonic())) * 1000)
            if not info.request(zc, wait_ms):
                continue
            j = info_json(info, type_)
            found[name] = j
            if args.stream:
                ev = "added" if change is ServiceStateChange.Added else "updated"
                emit(dict(j, event=ev))
            if args.until and j["name"] == args.until:
                break
        browser.cancel()
    finally:
        zc.close()
    if not args.stream:
        emit(sorted(found.values(), key=lambda s: s["fullname"]))
    return 0


def cmd_resolve(args):
    zc = make_zc(args)
    try:
        r = AddressResolver(fqdn(args.name))
        ok = r.request(zc, int(bounded(args.timeout) * 1000))
        addrs = r.parsed_scoped_addresses() if ok else []
    finally:
        zc.close()
    emit({"name": args.name, "addresses": addrs})
    return 0 if addrs else 1


def cmd_types(args):
    zc = make_zc(args)
    try:
        found = ZeroconfServiceTypes.find(zc=zc, timeout=bounded(args.timeout))
    finally:
        zc.close()
    emit(sorted(found))
    return 0


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--iface-addr", action="append", default=[])
    p.add_argument("--ipv6", action="store_true")
    sub = p.add_subparsers(dest="cmd", required=True)

    pub = sub.add_parser("publish")
    pub.add_argument("--name", required=True)
    pub.add_argument("--type", required=True)
    pub.add_argument("--port", type=int, required=True)
    pub.add_argument("--txt", action="append")
    pub.add_argument("--host")
    pub.add_argument("--addr", action="append")
    pub.add_argument("--duration", type=float, default=300.0)
    pub.add_argument("--allow-rename", action="store_true")

    br = sub.add_parser("browse")
    br.add_argument("--type", action="append", required=True)
    br.add_argument("--timeout", type=float, default=5.0)
    br.add_argument("--until")
    br.add_argument("--stream", action="store_true")

    rs = sub.add_parser("resolve")
    rs.add_argument("--name", required=True)
    rs.add_argument("--timeout", type=float, default=3.0)

    ty = sub.add_parser("types")
    ty.add_argument("--timeout", type=float, default=3.0)

    args = p.parse_args()
    try:
        return {"publish": cmd_publish, "browse": cmd_browse, "resolve": cmd_resolve,
                "types": cmd_types}[args.cmd](args)
    except Exception as e:  # report, never hang
        print(f"mdns_peers.py {args.cmd}: {type(e).__name__}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
