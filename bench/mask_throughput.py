"""Masked relay throughput: `xtok run -- cat FILE` versus a plain `cat FILE | cat`, same run.

Two files, each with 20 secrets fetched from a local endpoint:
- log text (default 512 MiB): log lines with, now and then, a secret in one of the forms the
  masker catches (raw, base64 at three offsets in two alphabets and wrapped, URL, JSON, shell);
- dense (default 64 MiB): a secret every ~33 bytes (`word secret\\n`), so every match costs.
All write to /dev/null. Each is measured with both processes of the pipeline on one core, on
two cores, and where the scheduler puts them (see `placements`). Rounds are interleaved so load
on the machine hits each alike; medians count. xtok's start-up (`xtok run … -- true`, measured
in the same rounds) is subtracted to give the relay alone. Prints GB/s, the ratio to
`cat | cat` (goals: >= 0.8 for log text, >= 0.25 dense), xtok's peak RSS, and checks that no
secret got through.

    python bench/mask_throughput.py [LOG_MIB [DENSE_MIB [ROUNDS]]]
"""

from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    with path.open("wb") as out:
        written = 0
        while written < size:
            block = bytearray()
            while len(block) < 1 << 20:
                block += b" ".join(rnd.choice(WORDS) for _ in range(10)) + b"\n"
                if rnd.random() < 0.002:
                    block += b"token=" + rnd.choice(forms) + b"\n"
            out.write(block)
            written += len(block)


def write_dense(path: Path, size: int, secrets: list[bytes], rnd: random.Random) -> None:
    with path.open("wb") as out:
        written = 0
        while written < size:
            block = b"".join(
                rnd.choice(WORDS[:8]) + b" " + rnd.choice(secrets) + b"\n" for _ in range(1 << 15)
            )
            out.write(block)
            written += len(block)


def leaks(xtok: list[str], env: dict[str, str], path: Path, secrets: list[bytes]) -> int:
    """Secrets seen in the masked first 32 MB."""
    out = path.with_suffix(".masked")
    with out.open("wb") as sink:
        subprocess.run([*xtok, "head", "-c", str(32 << 20), str(path)], env=env, stdout=sink)
    sample = out.read_bytes()
    out.unlink()
    return sum(any(f in sample for f in patterns_for(x)) for x in secrets)


def timed(run: Callable[..., int], *args: Any) -> tuple[float, int]:
    start = time.perf_counter()
    rss = run(*args)
    return time.perf_counter() - start, rss


def main() -> None:
    log_mib = int(sys.argv[1]) if len(sys.argv) > 1 else 512
    dense_mib = int(sys.argv[2]) if len(sys.argv) > 2 else 64
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    rnd = random.Random(20)
    secrets = [f"s3cr3t-{i:02d}-{rnd.getrandbits(48):012x}".encode() for i in range(20)]
    names = {f"bench/s{i:02d}": s for i, s in enumerate(secrets)}
    with tempfile.TemporaryDirectory() as tmp, endpoint(names) as env:
        files = {"log text": Path(tmp) / "build.log", "dense": Path(tmp) / "dense.log"}
        write_log(files["log text"], log_mib << 20, secrets, rnd)
        write_dense(files["dense"], dense_mib << 20, secrets, rnd)
        flags = [f"--secret=S{i:02d}={name}" for i, name in enumerate(names)]
        xtok = [sys.executable, "-m", "xtok", "run", *flags, "--"]

        cpus = sorted(os.sched_getaffinity(0))
        # Where the two processes of a pipeline run changes `cat | cat` threefold here: on one
        # core the pipe's pages stay in its cache; across two they travel. Each placement is
        # measured for both pipelines, the writer pinned to one core and the reader to another
        # (or the same). `unpinned` leaves it to the scheduler, which picks either.
        placements = {"one core": (cpus[0], cpus[0]), "unpinned": None}
        if len(cpus) > 1:
            placements["two cores"] = (cpus[0], cpus[1])

        def pin(where: tuple[int, int] | None, side: int) -> list[str]:
            return ["taskset", "-c", str(where[side])] if where else []

        def plain(path: Path, where: tuple[int, int] | None) -> int:
            first = subprocess.Popen([*pin(where, 0), "cat", str(path)], stdout=subprocess.PIPE)
            second = subprocess.Popen(
                [*pin(where, 1), "cat"], stdin=first.stdout, stdout=subprocess.DEVNULL
            )
            assert first.stdout is not None
            first.stdout.close()
            second.wait()
            first.wait()
            return 0

        def masked(argv: list[str], where: tuple[int, int] | None) -> int:
            """xtok reads where `cat` would read, and its command writes where `cat` would."""
            cmd = [*pin(where, 1), *xtok, *pin(where, 0), *argv]
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL)
            _, status, usage = os.wait4(proc.pid, 0)
            assert os.waitstatus_to_exitcode(status) == 0
            return int(usage.ru_maxrss)  # KiB on Linux

        results: dict[tuple[str, str], list[float]] = {}
        for label, path in files.items():
            runs: dict[str, list[list[float]]] = {p: [[], [], []] for p in placements}
            rss = 0
            for _ in range(rounds):
                for placement, where in placements.items():
                    base, mask, start = runs[placement]
                    base.append(timed(plain, path, where)[0])
                    seconds, peak = timed(masked, ["cat", str(path)], where)
                    mask.append(seconds)
                    rss = max(rss, peak)
                    start.append(timed(masked, ["true"], where)[0])
            for placement, series in runs.items():
                results[label, placement] = [statistics.median(x) for x in series] + [rss]
        # Only now the leak checks: they grow this process, and children forked from it count
        # its memory in their peak RSS.
        for (label, path), goal in zip(files.items(), (0.8, 0.25), strict=True):
            size = path.stat().st_size
            print(f"{label}: {size / 1e6:.0f} MB, 20 secrets, medians of {rounds} rounds")
            for placement in placements:
                b, m, s, rss = results[label, placement]
                print(
                    f"  {placement:9}: cat FILE | cat {size / b / 1e9:5.2f} GB/s;"
                    f" xtok run -- cat FILE {size / m / 1e9:5.2f} GB/s (ratio {b / m:.2f});"
                    f" relay alone (-{s * 1000:.0f} ms start) {size / (m - s) / 1e9:5.2f} GB/s:"
                    f" ratio {b / (m - s):.2f} (goal >= {goal})"
                )
            print(f"  xtok peak RSS: {rss / 1024:.1f} MB")
            print(f"  leaks in a 32 MB sample: {leaks(xtok, env, path, secrets)}")


if __name__ == "__main__":
    main()
