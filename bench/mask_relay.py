"""Masker throughput versus a plain copy of the same chunks, measured in the same run.

Prints MB/s for both and their ratio. This is the simple masker's baseline; the line-rate
masker (and `xtok run -- cat` versus `cat | cat`) is a later benchmark.

    python bench/mask_relay.py [MEGABYTES]
"""

from __future__ import annotations

import random
import sys
import time

from xtok.mask import Masker, patterns_for

CHUNK = 1 << 16


def log_text(size: int, secrets: list[bytes], rnd: random.Random) -> bytes:
    words = [
        b"INFO",
        b"build",
        b"step",
        b"compiling",
        b"module",
        b"ok",
        b"GET",
        b"/api/v1",
        b"200",
        b"took",
        b"ms",
        b"\n",
        b"deploying",
        b"artifact",
        b"sha256:",
    ]
    out = bytearray()
    while len(out) < size:
        out += b" ".join(rnd.choice(words) for _ in range(12)) + b"\n"
        if rnd.random() < 0.01:
            out += b"token=" + rnd.choice(secrets) + b"\n"
    return bytes(out[:size])


def best_of(runs: int, fn: object) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()  # type: ignore[operator]
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 64
    rnd = random.Random(7)
    secrets = [f"s3cr3t-{i:02d}-{rnd.getrandbits(64):016x}".encode() for i in range(20)]
    data = log_text(megabytes << 20, secrets, rnd)
    chunks = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    patterns = [p for s in secrets for p in patterns_for(s)]

    def copy() -> None:
        sink = bytearray()
        for c in chunks:
            sink += c

    def masked() -> None:
        masker = Masker(patterns)
        sink = bytearray()
        for c in chunks:
            sink += masker.feed(c)
        sink += masker.flush()
        assert not any(s in sink for s in secrets)

    base, mask = best_of(3, copy), best_of(3, masked)
    mb = len(data) / 1e6
    print(f"plain copy : {mb / base:10.1f} MB/s")
    print(f"masked     : {mb / mask:10.1f} MB/s ({len(patterns)} patterns)")
    print(f"ratio      : {base / mask:10.3f} (masked / plain copy throughput)")


if __name__ == "__main__":
    main()
