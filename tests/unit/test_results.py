"""check_png: what a backend returns is refused before upload unless it is a complete PNG of the requested size,
with a message that names the backend and the problem; and blank_png, what noop and the test doubles return."""

from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image

from tenkaigen_tools.noop_backend import NoopBackend
from worker.backends.base import GenerationRequest
from worker.config import load_settings
from worker.exceptions import ConfigurationError, InvalidBackendResult, Transient
from worker.results import IEND_CHUNK, PNG_SIGNATURE, blank_png, check_png

LIMIT = 1 << 20


def pil_png(width: int, height: int, mode: str = "RGB") -> bytes:
    out = io.BytesIO()
    Image.new(mode, (width, height)).save(out, format="PNG")
    return out.getvalue()


def check(png: object, width: int = 512, height: int = 384, max_bytes: int = LIMIT) -> None:
    check_png(png, width=width, height=height, max_bytes=max_bytes, backend="modal")  # type: ignore[arg-type]


def refused(png: object, **kwargs: int) -> str:
    with pytest.raises(InvalidBackendResult) as info:
        check(png, **kwargs)
    message = str(info.value)
    assert message.startswith("backend 'modal' returned "), message
    return message


def with_padding(png: bytes, size: int) -> bytes:
    """`png` grown to exactly `size` bytes by an ancillary chunk before IEND (still a valid PNG)."""
    pad = size - len(png) - 12
    assert pad >= 0
    data = b"\0" * pad
    chunk = struct.pack(">I", pad) + b"zzZz" + data + struct.pack(">I", zlib.crc32(b"zzZz" + data))
    return png[:-12] + chunk + png[-12:]


@pytest.mark.parametrize("mode", ["RGB", "RGBA", "L", "P", "1", "I;16"])
def test_a_valid_png_of_the_requested_size_passes(mode: str) -> None:
    check(pil_png(512, 384, mode))
    check(bytearray(pil_png(512, 384, mode)))


def test_the_blank_png_is_valid_tiny_transparent_and_cached() -> None:
    png = blank_png(2048, 2048)
    check(png, width=2048, height=2048)
    assert len(png) < 1024 and blank_png(2048, 2048) is png
    with Image.open(io.BytesIO(png)) as image:
        assert image.size == (2048, 2048)
        assert image.convert("RGBA").getpixel((2047, 2047)) == (0, 0, 0, 0)


async def test_noop_returns_a_png_of_the_requested_size() -> None:
    async def nothing(step: int, total: int) -> None:
        return None

    request = GenerationRequest(job_id="j", prompt="p", negative_prompt="", variant="lightning-8", width=768,
                                height=256, steps=4, true_cfg_scale=1.0, seed=1)
    result = await NoopBackend().generate(request, nothing)
    check_png(result.png, width=768, height=256, max_bytes=LIMIT, backend=result.backend)


def test_the_error_is_a_transient_with_its_own_code() -> None:
    assert issubclass(InvalidBackendResult, Transient)
    assert InvalidBackendResult.error_code == "invalid_backend_result"


def test_empty_bytes_are_refused() -> None:
    assert refused(b"") == "backend 'modal' returned an empty result (0 bytes) for a 512×384 request"


def test_a_result_that_is_not_bytes_is_refused() -> None:
    assert refused(None) == "backend 'modal' returned NoneType instead of PNG bytes for a 512×384 request"
    assert "returned str instead of PNG bytes" in refused("\x89PNG")


def test_seven_bytes_are_not_a_png() -> None:
    message = refused(PNG_SIGNATURE[:7])
    assert "7 bytes that are not a PNG (no PNG signature; it starts with 89 50 4e 47 0d 0a 1a)" in message


def test_a_jpeg_is_not_a_png_and_is_named() -> None:
    jpeg = io.BytesIO()
    Image.new("RGB", (512, 384)).save(jpeg, format="JPEG")
    message = refused(jpeg.getvalue())
    assert "that are not a PNG" in message and "ff d8 ff" in message and ", a JPEG)" in message


def test_an_html_error_page_is_not_a_png() -> None:
    assert "not a PNG" in refused(b"<html><body>502 Bad Gateway</body></html>")


def test_a_png_whose_first_chunk_is_not_ihdr_is_refused() -> None:
    png = pil_png(512, 384)
    assert "the first chunk is not a complete 13-byte IHDR header" in refused(png[:8] + png[33:])
    assert "the first chunk is not a complete 13-byte IHDR header" in refused(png[:20])


def test_a_png_with_a_wrong_ihdr_crc_is_refused() -> None:
    png = bytearray(pil_png(512, 384))
    png[29] ^= 0xFF
    assert "corrupt PNG" in (message := refused(bytes(png))) and "IHDR header fails its CRC check" in message


def test_an_ihdr_with_impossible_fields_is_refused() -> None:
    png = pil_png(512, 384)
    fields = png[16:24] + bytes([3, 2, 0, 0, 0])      # bit depth 3 does not exist
    bad = png[:16] + fields + struct.pack(">I", zlib.crc32(b"IHDR" + fields)) + png[33:]
    assert "invalid IHDR header" in (message := refused(bad)) and "bit depth 3, colour type 2" in message


def test_the_wrong_width_is_refused() -> None:
    assert refused(pil_png(256, 384)) == "backend 'modal' returned a 256×384 PNG for a 512×384 request"


def test_the_wrong_height_is_refused() -> None:
    assert refused(pil_png(512, 512)) == "backend 'modal' returned a 512×512 PNG for a 512×384 request"


def test_a_truncated_png_is_refused() -> None:
    png = pil_png(512, 384)
    message = refused(png[:-1])
    assert f"returned a truncated PNG ({len(png) - 1} bytes)" in message
    assert "does not end with an IEND chunk" in message
    assert "truncated" in refused(png[:len(png) // 2])
    assert "truncated" in refused(png[:-12])


def test_data_after_iend_is_refused() -> None:
    assert "data after the image" in refused(pil_png(512, 384) + b"\0")


def test_one_byte_over_the_limit_is_refused_and_exactly_the_limit_passes() -> None:
    png = with_padding(pil_png(512, 384), 5000)
    assert len(png) == 5000 and png.endswith(IEND_CHUNK)
    check(png, max_bytes=5000)
    assert refused(png, max_bytes=4999) == (
        "backend 'modal' returned 5000 bytes for a 512×384 request, more than the 4999-byte limit "
        "(TENKAIGEN_MAX_RESULT_BYTES)")


def test_the_limit_comes_before_parsing() -> None:
    assert "more than the 10-byte limit" in refused(b"x" * 11, max_bytes=10)


def test_the_limit_is_a_setting_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings(database_url="postgresql://x@localhost/db", storage="local").max_result_bytes == 64 << 20
    monkeypatch.setenv("TENKAIGEN_MAX_RESULT_BYTES", "1000")
    assert load_settings(database_url="postgresql://x@localhost/db", storage="local").max_result_bytes == 1000
    monkeypatch.setenv("TENKAIGEN_MAX_RESULT_BYTES", "0")
    with pytest.raises(ConfigurationError, match="TENKAIGEN_MAX_RESULT_BYTES: Input should be greater than"):
        load_settings(database_url="postgresql://x@localhost/db", storage="local")
