"""Annotations of an Ingress that the NGINX ingress controller reads as address ranges: the
API server takes any string there, and only the controller finds a range it cannot read.

ingress-nginx's annotation reference (docs/user-guide/nginx-configuration/annotations.md) says
the source-range annotations take a comma-separated list of CIDRs; its internal/net ParseCIDRs
splits the value at commas, trims each item and takes a CIDR (Go's net.ParseCIDR) or a bare
address (net.ParseIP), and fails on anything else. Read in a copy of the controller's source
whose version is not known, and not run here: a belief about the controller a reader runs,
kept because a range that is no range is wrong under any reading. The items are read with
Python's ipaddress (host bits set are allowed, as ParseCIDR allows them), after two forms it
takes and Go's parsers do not are refused: a netmask after the slash (`10.0.0.0/255.0.0.0`;
ParseCIDR wants a prefix length) and an IPv6 zone (`fe80::1%eth0`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any

#: the annotations whose value is a list of address ranges
RANGE_ANNOTATIONS = tuple(
    f"nginx.ingress.kubernetes.io/{name}"
    for name in ("whitelist-source-range", "allowlist-source-range", "denylist-source-range")
)


def problems(doc: dict[str, Any]) -> list[str]:
    """Each range annotation of an Ingress with an item that is no address range."""
    metadata = doc.get("metadata") if doc.get("kind") == "Ingress" else None
    annotations = metadata.get("annotations") if isinstance(metadata, dict) else None
    out = []
    for name in RANGE_ANNOTATIONS:
        value = annotations.get(name) if isinstance(annotations, dict) else None
        if not isinstance(value, str):
            continue
        for item in value.split(","):
            address, slash, length = item.strip().partition("/")
            try:
                if (slash and not re.fullmatch(r"[0-9]+", length)) or "%" in address:
                    raise ValueError(item)
                ipaddress.ip_network(item.strip(), strict=False)
            except ValueError:
                out.append(
                    f"metadata.annotations.{name}: '{item.strip()}' is not an address range "
                    "(a CIDR such as 10.0.0.0/8, or an address): the controller cannot read it"
                )
    return out
