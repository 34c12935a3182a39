"""Start-up cost of a pipeline step, each row against its peer measured in the same run.

- `xtok run --secret S=… -- true` (validate the token, fetch one secret from the local endpoint,
  spawn, relay) vs the write-up's own fetch step, `aws secretsmanager get-secret-value`, against
  the same endpoint with the same credentials (target: ratio <= 0.25).
- `xtok run` with four secrets vs with one: the fetch reads them concurrently.
- `xtok --version` vs `python -c pass`, the interpreter's own start (target: <= 25 ms).

Both through their installed executables, as a pipeline calls them. Rounds are interleaved (one
run of each per round) so that a busy machine slows every row alike; medians are printed.

    python bench/run_overhead.py [ROUNDS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

from _endpoint import endpoint

from xtok.tokens import token as tokens

BIN = Path(sys.executable).parent


def seconds(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 21
    names = ["one", "two", "three", "four"]
    with endpoint({f"bench/{n}": f"overhead-secret-{n}".encode() for n in names}) as env:
        creds = tokens.parse(env["XTOK_TOKEN"])
        aws_env = {
            **env,
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key.reveal_text(),
            "AWS_SESSION_TOKEN": creds.session_token.reveal_text(),
        }
        rows = {
            "python -c pass": ([sys.executable, "-c", "pass"], env),
            "xtok --version": ([str(BIN / "xtok"), "--version"], env),
            "aws secretsmanager get-secret-value": (
                [
                    str(BIN / "aws"),
                    "secretsmanager",
                    "get-secret-value",
                    "--secret-id",
                    "bench/one",
                ],
                aws_env,
            ),
            "xtok run --secret S=… -- true": (
                [str(BIN / "xtok"), "run", "--secret", "S=bench/one", "--", "true"],
                env,
            ),
            "xtok run, four secrets": (
                [str(BIN / "xtok"), "run"]
                + [f"--secret=S{i}=bench/{n}" for i, n in enumerate(names)]
                + ["--", "true"],
                env,
            ),
        }
        times: dict[str, list[float]] = {name: [] for name in rows}
        for _ in range(2):  # warm the page cache
            for argv, e in rows.values():
                seconds(argv, e)
        for _ in range(rounds):
            for name, (argv, e) in rows.items():
                times[name].append(seconds(argv, e))
    ms = {name: statistics.median(t) * 1000 for name, t in times.items()}
    for name, value in ms.items():
        print(f"{name:38} {value:7.1f} ms (median of {rounds})")
    run, aws = ms["xtok run --secret S=… -- true"], ms["aws secretsmanager get-secret-value"]
    version, python = ms["xtok --version"], ms["python -c pass"]
    print(f"{'xtok run / aws get-secret-value':38} {run / aws:7.2f}    (target <= 0.25)")
    print(f"{'xtok run, four secrets / one':38} {ms['xtok run, four secrets'] / run:7.2f}")
    print(f"{'xtok --version / python -c pass':38} {version / python:7.2f}    (target: <= 25 ms)")


if __name__ == "__main__":
    main()
