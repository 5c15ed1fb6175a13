"""What a backend returns, checked before it is uploaded; and the blank PNG the test doubles return.

`check_png` runs on every job, right after `backend.generate` and before any upload, so it is deliberately
cheap (a few microseconds, whatever the image size): it reads the 8-byte signature and the IHDR chunk (the first
chunk, 13 data bytes, CRC checked) and checks that the bytes end with the 12-byte IEND chunk. It does not walk
the other chunks, inflate IDAT or decode pixels. That is enough to refuse what broken backends actually send
(nothing, an error page or JSON, a JPEG, a transfer cut short, an image of the wrong size, a runaway payload);
a PNG with a valid frame and corrupt pixel data still passes.

A failed check raises `InvalidBackendResult` (a `Transient`: retried with backoff up to max_attempts, then
`failed`), whose message names the backend and what was wrong, e.g.
"backend 'modal' returned a 512×512 PNG for a 1024×1024 request".
"""

from __future__ import annotations

import functools
import struct
import zlib

from worker.exceptions import InvalidBackendResult

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
IHDR_HEAD = struct.pack(">I", 13) + b"IHDR"
_PNG_HEAD = PNG_SIGNATURE + IHDR_HEAD
IEND_CHUNK = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
_IHDR_END = len(PNG_SIGNATURE) + 8 + 13 + 4              # signature, length + type, 13 data bytes, CRC
MIN_PNG_BYTES = _IHDR_END + len(IEND_CHUNK)
BIT_DEPTHS = {0: {1, 2, 4, 8, 16}, 2: {8, 16}, 3: {1, 2, 4, 8}, 4: {8, 16}, 6: {8, 16}}
"""Allowed bit depths by PNG colour type (PNG spec, table 11.1)."""

_KNOWN_MAGIC = ((b"\xff\xd8\xff", "a JPEG"), (b"GIF8", "a GIF"), (b"BM", "a BMP"), (b"{", "JSON?"),
                (b"<", "HTML/XML?"), (b"\x1f\x8b", "gzip data"))


def check_png(png: bytes, *, width: int, height: int, max_bytes: int, backend: str = "?") -> None:
    """Raise `InvalidBackendResult` unless `png` looks like a complete PNG of `width`×`height`, at most
    `max_bytes` long. Cheap: signature, IHDR and the trailing IEND only (see the module docstring)."""
    if (isinstance(png, bytes) and MIN_PNG_BYTES <= len(png) <= max_bytes and png[:16] == _PNG_HEAD
            and png[-12:] == IEND_CHUNK and zlib.crc32(png[12:29]) == int.from_bytes(png[29:33], "big")
            and png[16:24] == struct.pack(">II", width, height) and _valid_ihdr_fields(png)):
        return                                     # the fast path: every job of a healthy backend ends here
    _check_slowly(png, width, height, max_bytes, backend)


def _valid_ihdr_fields(png: bytes) -> bool:
    depth, colour, compression, filtering, interlace = png[24:29]
    return depth in BIT_DEPTHS.get(colour, ()) and compression == 0 and filtering == 0 and interlace <= 1


def _check_slowly(png: object, width: int, height: int, max_bytes: int, backend: str) -> None:
    """The same checks one by one: raise at the first problem with a message that names it."""
    who = f"backend {backend!r}"
    asked = f"a {width}×{height} request"
    if not isinstance(png, bytes | bytearray):
        raise InvalidBackendResult(f"{who} returned {type(png).__name__} instead of PNG bytes for {asked}")
    size = len(png)
    if size == 0:
        raise InvalidBackendResult(f"{who} returned an empty result (0 bytes) for {asked}")
    if size > max_bytes:
        raise InvalidBackendResult(f"{who} returned {size} bytes for {asked}, more than the {max_bytes}-byte "
                                   "limit (TENKAIGEN_MAX_RESULT_BYTES)")
    if not png.startswith(PNG_SIGNATURE):
        head = bytes(png[:8])
        kind = next((f", {name}" for magic, name in _KNOWN_MAGIC if head.startswith(magic)), "")
        raise InvalidBackendResult(f"{who} returned {size} bytes that are not a PNG (no PNG signature; it starts "
                                   f"with {head.hex(' ')}{kind}) for {asked}")
    if size < _IHDR_END or png[8:16] != IHDR_HEAD:
        raise InvalidBackendResult(f"{who} returned a broken PNG ({size} bytes) for {asked}: the first chunk is "
                                   "not a complete 13-byte IHDR header")
    (crc,) = struct.unpack_from(">I", png, _IHDR_END - 4)
    if zlib.crc32(png[12:_IHDR_END - 4]) != crc:
        raise InvalidBackendResult(f"{who} returned a corrupt PNG ({size} bytes) for {asked}: the IHDR header "
                                   "fails its CRC check")
    got_width, got_height, depth, colour, compression, filtering, interlace = struct.unpack_from(">IIBBBBB", png, 16)
    if not _valid_ihdr_fields(bytes(png[:_IHDR_END])):
        raise InvalidBackendResult(
            f"{who} returned a PNG with an invalid IHDR header for {asked} (bit depth {depth}, colour type "
            f"{colour}, compression {compression}, filter {filtering}, interlace {interlace})")
    if size < MIN_PNG_BYTES or not png.endswith(IEND_CHUNK):
        raise InvalidBackendResult(f"{who} returned a truncated PNG ({size} bytes) for {asked}: it does not end "
                                   "with an IEND chunk (cut short, or data after the image)")
    if (got_width, got_height) != (width, height):
        raise InvalidBackendResult(f"{who} returned a {got_width}×{got_height} PNG for {asked}")


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@functools.lru_cache(maxsize=256)
def blank_png(width: int, height: int) -> bytes:
    """A valid, fully transparent `width`×`height` PNG (1-bit greyscale with tRNS: a 2048×2048 one is under a
    kilobyte). Built once per size, then served from the cache: what the noop backend and the test doubles return."""
    if width < 1 or height < 1:
        raise ValueError(f"blank_png: width and height must be positive (got {width}×{height})")
    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    row = bytes(1 + (width + 7) // 8)             # filter type 0, then zero bits (grey 0, made transparent)
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    return (PNG_SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"tRNS", b"\x00\x00") + _chunk(b"IDAT", idat)
            + IEND_CHUNK)
