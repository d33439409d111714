"""IP address facts shared by the settings and the policies (standard library only)."""

from __future__ import annotations

import ipaddress

# RFC 5737 documentation ranges: placeholders that never route anywhere.
DOCUMENTATION_RANGES = tuple(
    ipaddress.ip_network(cidr) for cidr in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")
)


def is_documentation_range(cidr: str) -> bool:
    """Whether a CIDR lies inside an RFC 5737 documentation range."""
    network = ipaddress.ip_network(cidr, strict=False)
    return any(
        network.version == doc.version and network.subnet_of(doc)  # type: ignore[arg-type]
        for doc in DOCUMENTATION_RANGES
    )
