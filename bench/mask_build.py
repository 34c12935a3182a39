"""Masker build cost: time and peak RSS to turn N secrets of 36 bytes (random letters, digits
and punctuation, so URL, JSON and shell forms differ) into a compiled masker
(every form, `Patterns`), each in a fresh process, against peers measured in the same run: the
same process that only imports the masker and its matcher libraries (RSS floor), and one that
compiles just the N raw values (time floor: one literal per secret). Medians of interleaved
rounds; prints each figure, its ratio to its peer, and the goal. Wall and CPU time both: on a
shared machine the wall time also counts whatever else runs.

    python bench/mask_build.py [ROUNDS]
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

GOALS = {200: (0.100, 64), 2000: (1.0, 128)}  # seconds, MB

CHILD = """
import json, random, resource, sys, time
n, mode = int(sys.argv[1]), sys.argv[2]
import hyperscan, ahocorasick_rs
from xtok.run.mask import Patterns
from xtok.run.variants import patterns_for
rnd = random.Random(n)
chars = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=-_!@#%&*"
secrets = [bytes(rnd.choices(chars, k=36)) for _ in range(n)]  # passwords, API keys
start, cpu = time.perf_counter(), time.process_time()
if mode == "full":
    compiled = Patterns(p for s in secrets for p in patterns_for(s))
    count = len(compiled.items)
elif mode == "raw":
    compiled = Patterns(secrets)
    count = len(secrets)
else:
    count = 0
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "cpu": cpu, "rss": rss, "patterns": count}))
"""


def measure(n: int, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(n), mode], capture_output=True, text=True, check=True
    ).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    for n, (goal_s, goal_mb) in GOALS.items():
        runs: dict[str, list[dict[str, float]]] = {"full": [], "raw": [], "import": []}
        for _ in range(rounds):  # interleaved, so load on the machine hits all alike
            for mode, results in runs.items():
                results.append(measure(n, mode))

        def med(mode: str, key: str, runs: dict[str, list[dict[str, float]]] = runs) -> float:
            return statistics.median(r[key] for r in runs[mode])

        full_s, raw_s = med("full", "seconds"), med("raw", "seconds")
        full_cpu, raw_cpu = med("full", "cpu"), med("raw", "cpu")
        full_mb, base_mb = med("full", "rss"), med("import", "rss")
        print(f"{n} secrets of 36 bytes, {int(med('full', 'patterns'))} patterns:")
        print(
            f"  build time : {full_s * 1000:7.1f} ms  vs raw values only {raw_s * 1000:6.1f} ms:"
            f" ratio {full_s / raw_s:5.2f}  (goal < {goal_s * 1000:.0f} ms)"
        )
        print(
            f"  CPU time   : {full_cpu * 1000:7.1f} ms  vs raw values only {raw_cpu * 1000:6.1f}"
            f" ms: ratio {full_cpu / raw_cpu:5.2f}  (wall time above counts other load too)"
        )
        print(
            f"  peak RSS   : {full_mb:7.1f} MB  vs imports only {base_mb:9.1f} MB:"
            f" ratio {full_mb / base_mb:5.2f}  (goal < {goal_mb} MB)"
        )


if __name__ == "__main__":
    main()
