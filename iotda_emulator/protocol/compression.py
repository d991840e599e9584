"""Compressed uplinks: ``?encoding=gzip`` on ``messages/up``, ``properties/report`` and the gateway batch
report (doc/protocol.md §2.11).

Huawei's C and Java device SDKs gzip the payload and append ``encoding=gzip`` to the topic's query; the
platform inflates it before anything else reads it. Inflation is bounded: a payload that inflates beyond
IoTDA's PUBLISH limit (1 MB, §1.5) is refused after at most that many bytes were produced, so a small
"gzip bomb" never costs more memory than a legitimate report could.
"""
from __future__ import annotations

import zlib
from typing import Optional

#: The only ``encoding`` value IoTDA's device SDKs send.
GZIP = "gzip"
#: Largest inflated payload accepted (IoTDA's PUBLISH payload limit, doc/protocol.md §1.5).
MAX_INFLATED = 1024 * 1024

_GZIP_WBITS = 16 + zlib.MAX_WBITS   # gzip header and trailer, not raw deflate or zlib


class CompressionError(ValueError):
    """The payload is not a complete gzip stream, or inflates beyond the limit."""


def gunzip_bounded(data: bytes, limit: int = MAX_INFLATED) -> bytes:
    """The inflated bytes of one gzip member ``data``; :class:`CompressionError` when it is not valid gzip,
    is truncated, has trailing garbage or would inflate to more than ``limit`` bytes."""
    inflater = zlib.decompressobj(_GZIP_WBITS)
    try:
        out = inflater.decompress(data, limit + 1)   # never more than limit + 1 bytes in memory
    except zlib.error as exc:
        raise CompressionError(f"not a gzip stream ({exc})") from None
    if len(out) > limit:
        raise CompressionError(f"inflates beyond {limit} bytes")
    if not inflater.eof:
        # either truncated, or output stopped at the cap with input left over: the stream is bigger than the cap
        if inflater.unconsumed_tail:
            raise CompressionError(f"inflates beyond {limit} bytes")
        raise CompressionError("truncated gzip stream")
    if inflater.unused_data:
        raise CompressionError("data after the end of the gzip stream")
    return out


def encoding_of(query_encoding: Optional[str]) -> Optional[str]:
    """None for an uncompressed payload, ``"gzip"`` for a gzip one; ValueError for an encoding IoTDA does not know."""
    if query_encoding is None:
        return None
    if query_encoding != GZIP:
        raise ValueError(f"unsupported encoding {query_encoding!r}")
    return GZIP
