"""HTTPS for the API: the server's TLS context from a certificate chain and its key."""

from __future__ import annotations

import ssl


def server_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    """A server context with Python's secure defaults, refusing anything older than TLS 1.2.

    TLS 1.0 and 1.1 are deprecated (RFC 8996); Python's default context already sets
    OpenSSL's cipher and option defaults, so only the floor is stated here.
    """
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(cert_file, key_file)
    return context
