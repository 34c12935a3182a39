"""Whether a host is this machine's loopback: where plain http:// is allowed and listening
without TLS needs no warning."""

from __future__ import annotations

import ipaddress


def is_loopback(host: str | None) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (IPv6 without brackets, as `urlsplit().hostname` and
    `--listen` give it); never a name that only starts like one (`localhost.example`,
    `127.0.0.1.nip.io`), which DNS may send anywhere."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False
