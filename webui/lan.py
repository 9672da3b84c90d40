"""The names and addresses a phone on the home network can reach this device by.

Used twice: ``breathe web-cert`` puts them all in the web certificate, and the daemon prints
one address per line at start-up (a phone cannot use ``127.0.0.1``). Standard library only:
the IPv4 address of every interface comes from the ``SIOCGIFADDR`` ioctl (Linux, so the Pi),
with the address of the default route as a fallback elsewhere.
"""

from __future__ import annotations

import ipaddress
import socket
import struct

SIOCGIFADDR = 0x8915
WILDCARD_HOSTS = ("0.0.0.0", "::", "")


def _interface_address(sock: socket.socket, name: str) -> str | None:
    import fcntl

    try:
        packed = fcntl.ioctl(sock.fileno(), SIOCGIFADDR,
                             struct.pack("256s", name.encode()[:15]))
    except OSError:  # an interface without an IPv4 address
        return None
    return socket.inet_ntoa(packed[20:24])


def _default_route_address() -> str | None:
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: it only picks the interface
            return probe.getsockname()[0]
    except OSError:
        return None


def lan_addresses() -> list[str]:
    """Every IPv4 address of this machine except loopback, in interface order."""
    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            for _, name in socket.if_nameindex():
                address = _interface_address(sock, name)
                if address:
                    found.append(address)
    except (OSError, ImportError):
        pass
    fallback = _default_route_address()
    if fallback:
        found.append(fallback)
    usable = [a for a in found if not ipaddress.ip_address(a).is_loopback]
    return list(dict.fromkeys(usable))


def host_names() -> list[str]:
    """This machine's hostname and its mDNS name (``NAME.local``)."""
    host = socket.gethostname()
    return [host] if host.endswith(".local") else [host, f"{host}.local"]


def web_urls(scheme: str, host: str, port: int) -> list[str]:
    """The addresses of the web app, one per name a phone may use (the ``.local`` name first).

    Listening on one address gives just that one; listening everywhere gives the mDNS name,
    every LAN address and, last, the loopback address for this machine itself.
    """
    if host not in WILDCARD_HOSTS:
        shown = f"[{host}]" if ":" in host else host
        return [f"{scheme}://{shown}:{port}/"]
    names = [n for n in host_names() if n.endswith(".local")]
    return [f"{scheme}://{name}:{port}/" for name in [*names, *lan_addresses(), "127.0.0.1"]]
