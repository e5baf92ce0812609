"""Minimal PNG writing and image helpers for the bench scripts (Debian's python3 here has neither
PIL nor matplotlib): write_png(path, rgb), grey(), tile()."""
import struct
import zlib

import numpy as np


def write_png(path, image):
    """image: (H, W) or (H, W, 3) uint8, row 0 at the top."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    img = np.ascontiguousarray(img.astype(np.uint8))
    h, w, _ = img.shape
    raw = b"".join(b"\x00" + img[r].tobytes() for r in range(h))

    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)

    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n")
        f.write(chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)))
        f.write(chunk(b"IDAT", zlib.compress(raw, 6)))
        f.write(chunk(b"IEND", b""))


def grey(values, lo=None, hi=None, percentiles=(1, 99.5)):
    """A float image to RGB uint8, windowed to [lo, hi] (default: percentiles of its positive part)."""
    v = np.asarray(values, float)
    if lo is None or hi is None:
        pos = v[v > 0]
        p = np.percentile(pos, percentiles) if pos.size else (0, 1)
        lo = p[0] if lo is None else lo
        hi = p[1] if hi is None else hi
    g = np.clip((v - lo) / max(hi - lo, 1e-12), 0, 1) * 255
    return np.repeat(g.astype(np.uint8)[:, :, None], 3, axis=2)


def tile(images, columns, pad=4, background=0):
    """Images (H_i, W_i, 3) in a grid of `columns`, each cell the size of the largest."""
    hmax = max(i.shape[0] for i in images)
    wmax = max(i.shape[1] for i in images)
    rows = (len(images) + columns - 1) // columns
    out = np.full((rows * (hmax + pad) + pad, columns * (wmax + pad) + pad, 3), background, np.uint8)
    for n, im in enumerate(images):
        r, c = divmod(n, columns)
        y, x = pad + r * (hmax + pad), pad + c * (wmax + pad)
        out[y:y + im.shape[0], x:x + im.shape[1]] = im
    return out


def upscale(image, factor):
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)
