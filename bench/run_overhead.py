"""Start-up cost of the whole `xtok run --secret … -- true` (validate the token, fetch one
secret from the local endpoint, spawn) versus the write-up's own fetch step,
`aws secretsmanager get-secret-value`, against the same endpoint with the same credentials.
Medians of many runs of each, in the same run; prints both and the ratio (target <= 0.5).

    python bench/run_overhead.py [RUNS]
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from _endpoint import endpoint

from xtok.tokens import token as tokens


def median_time(argv: list[str], env: dict[str, str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 15
    with endpoint({"bench/one": b"overhead-secret-value"}) as env:
        creds = tokens.parse(env["XTOK_TOKEN"])
        aws_env = {
            **env,
            "AWS_ACCESS_KEY_ID": creds.access_key_id,
            "AWS_SECRET_ACCESS_KEY": creds.secret_access_key.reveal_text(),
            "AWS_SESSION_TOKEN": creds.session_token.reveal_text(),
        }
        aws = [
            sys.executable,
            "-m",
            "awscli",
            "--region",
            "us-east-1",
            "secretsmanager",
            "get-secret-value",
            "--secret-id",
            "bench/one",
        ]
        xtok = [sys.executable, "-m", "xtok", "run", "--secret", "S=bench/one", "--", "true"]
        median_time(xtok, env, 2)  # warm the page cache for both
        median_time(aws, aws_env, 2)
        ours, theirs = median_time(xtok, env, runs), median_time(aws, aws_env, runs)
        print(f"aws secretsmanager get-secret-value : {theirs * 1000:7.1f} ms (median of {runs})")
        print(f"xtok run --secret S=… -- true       : {ours * 1000:7.1f} ms (median of {runs})")
        print(f"ratio                               : {ours / theirs:7.2f}  (target <= 0.5)")


if __name__ == "__main__":
    main()
