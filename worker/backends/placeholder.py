"""The `placeholder` backend: no ML. It draws a PNG of the requested size that shows the prompt, variant and
seed, reporting progress once per step. For frontend work and the embedded default without a GPU; the image
says what it is, and the job row records backend = placeholder.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import io
import textwrap
import time
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from worker.backends.base import GenerationRequest, GenerationResult, ProgressCallback

if TYPE_CHECKING:
    from worker.config import Settings

MAX_TEXT_CHARS = 600


class PlaceholderBackend:
    """Draws the prompt on a seed-coloured background."""

    name = "placeholder"

    def __init__(self, *, step_seconds: float = 0.0) -> None:
        self.step_seconds = step_seconds

    async def generate(self, request: GenerationRequest, on_progress: ProgressCallback) -> GenerationResult:
        started = time.perf_counter()
        steps = max(1, request.steps)
        for step in range(1, steps + 1):
            if self.step_seconds:
                await asyncio.sleep(self.step_seconds)
            await on_progress(step, steps)
        png = await asyncio.to_thread(render, request) if request.width * request.height > 512 * 512 \
            else render(request)
        return GenerationResult(
            png=png, width=request.width, height=request.height, seed=request.seed, steps=steps,
            variant=request.variant, backend=self.name,
            timings={"total_s": time.perf_counter() - started})

    async def aclose(self) -> None:
        return None


def render(request: GenerationRequest) -> bytes:
    """The placeholder image as PNG bytes."""
    digest = hashlib.sha256(f"{request.seed}:{request.prompt}".encode()).digest()
    top, bottom = (digest[0], digest[1], digest[2]), (digest[3], digest[4], digest[5])
    image = Image.new("RGB", (request.width, request.height), top)
    draw = ImageDraw.Draw(image)
    for y in range(0, request.height, 8):       # a cheap vertical gradient in 8-pixel bands
        t = y / max(1, request.height - 1)
        colour = tuple(int(a + (b - a) * t) for a, b in zip(top, bottom, strict=True))
        draw.rectangle([0, y, request.width, y + 8], fill=colour)
    size = max(12, request.width // 28)
    font = _font(size)
    small = _font(max(10, size * 2 // 3))
    margin = request.width // 16
    chars_per_line = max(8, int((request.width - 2 * margin) / (size * 0.55)))
    lines = textwrap.wrap(request.prompt[:MAX_TEXT_CHARS], width=chars_per_line) or [""]
    footer = f"PLACEHOLDER · {request.variant} · seed {request.seed} · {request.width}x{request.height}"
    y = margin
    for line in lines:
        if y > request.height - 3 * size:
            break
        draw.text((margin + 1, y + 1), line, fill=(0, 0, 0), font=font)
        draw.text((margin, y), line, fill=(255, 255, 255), font=font)
        y += int(size * 1.3)
    draw.text((margin, request.height - margin - size), footer, fill=(255, 255, 255), font=small)
    out = io.BytesIO()
    image.save(out, format="PNG", compress_level=1)
    return out.getvalue()


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:                              # Pillow < 10.1 has no sized default font
        return ImageFont.load_default()


def create_backend(settings: Settings) -> PlaceholderBackend:
    return PlaceholderBackend(step_seconds=settings.placeholder_step_seconds)
