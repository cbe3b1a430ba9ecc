"""What one photo upload costs the gateway: decoding, turning, shrinking and encoding it again.

    python bench/photo_upload.py [--count 20] [--max-side 2560]

Makes camera-like JPEGs with Pillow (noisy, so they compress like photos) at the sizes citizens
send — a phone camera's 12 MP original as a mini-program uploads it, and the widget's copy shrunk
to 1600 px in the browser — then runs ``channels.media.normalise_image`` on each ``--count`` times
in one thread and prints p50 / p99 milliseconds, photos per second and the bytes kept. A gateway
process serves uploads in a thread pool beside the event loop, so this is the cost per core.
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

from PIL import Image, ImageChops

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from channels.media import normalise_image  # noqa: E402

SIZES = {"phone original 4000x3000": (4000, 3000), "widget copy 1600x1200": (1600, 1200)}


def camera_jpeg(width: int, height: int) -> bytes:
    light = Image.linear_gradient("L").resize((width, height))
    grain = Image.effect_noise((width, height), 40)
    image = Image.merge("RGB", (light, ImageChops.add(light, grain, scale=2), grain))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=20, help="uploads per size (default 20)")
    parser.add_argument("--max-side", type=int, default=2560, help="HOTLINE_MEDIA_MAX_SIDE (default 2560)")
    args = parser.parse_args()
    for label, (width, height) in SIZES.items():
        data = camera_jpeg(width, height)
        times = []
        kept = 0
        for _ in range(args.count):
            started = time.perf_counter()
            content, _ = normalise_image(data, args.max_side)
            times.append((time.perf_counter() - started) * 1000)
            kept = len(content)
        times.sort()
        p99 = times[min(len(times) - 1, int(len(times) * 0.99))]
        print(
            f"{label}: sent {len(data) / 1e6:.2f} MB, kept {kept / 1e6:.2f} MB; "
            f"p50 {statistics.median(times):.0f} ms, p99 {p99:.0f} ms, "
            f"{1000 / statistics.mean(times):.1f} photos/s per core"
        )


if __name__ == "__main__":
    main()
