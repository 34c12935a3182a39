"""Masked relay throughput: `xtok run -- cat FILE` versus a plain `cat FILE | cat`, same run.

FILE is log-like text (default 1 GiB) with 20 secrets planted, each in all the forms the masker
catches (raw, base64 at three offsets in two alphabets and wrapped, URL, JSON, shell quoting).
Both pipelines write to /dev/null; each is timed three times and the best run counts. Prints
GB/s for both, their ratio (target >= 0.5) and xtok's peak RSS (target < 64 MB), and checks on a
slice of the file that the masked output holds no secret.

    python bench/mask_throughput.py [MEGABYTES]
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _endpoint import endpoint

from xtok.run.variants import patterns_for

WORDS = [
    b"INFO",
    b"DEBUG",
    b"build",
    b"step",
    b"compiling",
    b"module",
    b"ok",
    b"GET",
    b"/api/v1/items",
    b"200",
    b"took",
    b"ms",
    b"deploying",
    b"artifact",
    b"sha256:",
    b"[####      ] 42%",
    b"Downloading",
    b"from",
    b"https://repo.example/pkg.tgz",
]


def write_log(path: Path, size: int, secrets: list[bytes], rnd: random.Random) -> None:
    forms = [f for s in secrets for f in patterns_for(s)]
    block = bytearray()
    with path.open("wb") as out:
        written = 0
        while written < size:
            block.clear()
            while len(block) < 1 << 20:
                block += b" ".join(rnd.choice(WORDS) for _ in range(10)) + b"\n"
                if rnd.random() < 0.002:
                    block += b"token=" + rnd.choice(forms) + b"\n"
            out.write(block)
            written += len(block)


def best_time(run: object, times: int = 3) -> tuple[float, int]:
    best, rss = float("inf"), 0
    for _ in range(times):
        start = time.perf_counter()
        peak = run()  # type: ignore[operator]
        best = min(best, time.perf_counter() - start)
        rss = max(rss, peak)
    return best, rss


def main() -> None:
    megabytes = int(sys.argv[1]) if len(sys.argv) > 1 else 1024
    rnd = random.Random(20)
    secrets = [f"s3cr3t-{i:02d}-{rnd.getrandbits(96):024x}".encode() for i in range(20)]
    names = {f"bench/s{i:02d}": s for i, s in enumerate(secrets)}
    with tempfile.TemporaryDirectory() as tmp, endpoint(names) as env:
        log = Path(tmp) / "build.log"
        write_log(log, megabytes << 20, secrets, rnd)
        size = log.stat().st_size
        flags = [f"--secret=S{i:02d}={name}" for i, name in enumerate(names)]
        xtok = [sys.executable, "-m", "xtok", "run", *flags, "--"]

        def plain() -> int:
            first = subprocess.Popen(["cat", str(log)], stdout=subprocess.PIPE)
            second = subprocess.Popen(["cat"], stdin=first.stdout, stdout=subprocess.DEVNULL)
            assert first.stdout is not None
            first.stdout.close()
            second.wait()
            first.wait()
            return 0

        def masked() -> int:
            proc = subprocess.Popen([*xtok, "cat", str(log)], env=env, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            assert proc.returncode == 0
            return int(usage.ru_maxrss)  # KiB on Linux

        base, _ = best_time(plain)
        mask, rss = best_time(masked)
        sample = subprocess.run(
            [*xtok, "head", "-c", str(64 << 20), str(log)], env=env, capture_output=True, check=True
        ).stdout
        leaked = [s for s in secrets if any(f in sample for f in patterns_for(s))]
        print(
            f"data            : {size / 1e9:.2f} GB, 20 secrets, "
            f"{sum(len(patterns_for(s)) for s in secrets)} patterns"
        )
        print(f"cat FILE | cat  : {size / base / 1e9:6.2f} GB/s")
        print(f"xtok run -- cat : {size / mask / 1e9:6.2f} GB/s")
        print(f"ratio           : {base / mask:6.2f}  (target >= 0.5)")
        print(f"xtok peak RSS   : {rss / 1024:6.1f} MB (target < 64 MB)")
        print(f"leaks in sample : {len(leaked)}")


if __name__ == "__main__":
    main()
