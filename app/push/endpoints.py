"""Where a webhook may point: the URL rule and the address rule, applied when a webhook
device registers and again when each request leaves (DNS can change in between).

A URL is absolute, ``https`` (``http`` too where ``WEBHOOK_ALLOW_HTTP`` is set), at most
2,048 characters, without user-info or fragment. Its host may not be, nor resolve to, a
loopback, private, link-local, multicast, reserved or otherwise non-global address unless
that address is in ``WEBHOOK_ALLOW_NETWORKS``: a registered URL must not turn the push
worker into a way into the operator's own network.
"""

import ipaddress
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

MAX_URL_LENGTH = 2048
Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class RefusedEndpoint(ValueError):
    """A webhook URL, or an address its host resolves to, that is not allowed."""


@dataclass(frozen=True)
class EndpointPolicy:
    allow_http: bool = False
    allow_networks: Sequence[Network] = ()

    @classmethod
    def from_config(cls, config) -> "EndpointPolicy":
        return cls(config["WEBHOOK_ALLOW_HTTP"], tuple(config["WEBHOOK_ALLOW_NETWORKS"]))

    def check_url(self, raw: str) -> str:
        """The URL as sent, if its form is allowed; ``RefusedEndpoint`` says why not.
        A host given as an address is checked too; a name is checked by ``resolve``."""
        if len(raw) > MAX_URL_LENGTH:
            raise RefusedEndpoint(f"A webhook URL has at most {MAX_URL_LENGTH} characters.")
        try:
            parts = urlsplit(raw)
            _ = parts.port  # a port out of range raises ValueError
        except ValueError as exc:
            raise RefusedEndpoint("A webhook URL must be a valid absolute URL.") from exc
        schemes = ("https", "http") if self.allow_http else ("https",)
        if parts.scheme not in schemes:
            raise RefusedEndpoint(f"A webhook URL must use {' or '.join(schemes)}.")
        if not parts.hostname:
            raise RefusedEndpoint("A webhook URL must name a host.")
        if parts.username is not None or parts.password is not None:
            raise RefusedEndpoint("A webhook URL may not carry a user name or password.")
        if "#" in raw:
            raise RefusedEndpoint("A webhook URL may not have a fragment.")
        if any(ord(char) <= 0x20 or ord(char) == 0x7F for char in raw):
            raise RefusedEndpoint("A webhook URL may not contain spaces or control "
                                  "characters.")
        literal = _literal_address(parts.hostname)
        if literal is not None:
            self.check_addresses(parts.hostname, [literal])
        return raw

    def check_addresses(self, host: str, addresses: Iterable[Address]) -> None:
        """Every address ``host`` resolved to must be allowed (one refused address refuses
        the host: the connection could go to any of them)."""
        for address in addresses:
            if not self.allows(address):
                raise RefusedEndpoint(f"The webhook host {host} is or resolves to a special "
                                      "address (loopback, private, link-local, multicast "
                                      "or reserved), which webhooks may not reach.")

    def allows(self, address: Address) -> bool:
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        if any(address in network for network in self.allow_networks):
            return True
        return address.is_global and not address.is_multicast

    def resolve(self, url: str) -> list[Address]:
        """The URL's host resolved (blocking), every address checked."""
        host = urlsplit(url).hostname
        assert host is not None  # check_url refused URLs without one
        literal = _literal_address(host)
        addresses = [literal] if literal is not None else resolve_host(host)
        self.check_addresses(host, addresses)
        return addresses

    def check(self, raw: str) -> str:
        """The registration's check: the URL's form, then its host's addresses now."""
        url = self.check_url(raw)
        self.resolve(url)
        return url


def resolve_host(host: str, port: int = 443) -> list[Address]:
    try:
        answers = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise RefusedEndpoint(f"The webhook host {host} does not resolve.") from exc
    return [ipaddress.ip_address(str(answer[4][0]).split("%")[0]) for answer in answers]


def _literal_address(host: str) -> Address | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None
