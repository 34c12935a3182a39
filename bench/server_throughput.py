"""GetSecretValue throughput: `xtok server` against moto's server and against a no-op app on
xtok's own HTTP stack, measured in the same run with a C load generator (wrk).

Each endpoint runs as a subprocess on loopback. xtok and moto get the same setup (a secret, a
role with a permission policy, an assumed-role session with a session policy); then one
SigV4-signed GetSecretValue request, signed once per endpoint, is replayed by wrk over 1, 8 and
32 keep-alive connections (a signature stays valid for 15 minutes; the run takes about one).
xtok verifies the signature, the session and the policies of every request and commits an audit
row for each; moto checks none of it. The no-op app answers the same request with a fixed body
on the same uvicorn/httptools stack: the distance to it is what xtok's handling costs. Each
figure is the median of ROUNDS runs, the endpoints taking turns, so a burst of load from
elsewhere on the machine hits all of them alike.

    python bench/server_throughput.py [SECONDS_PER_RUN] [ROUNDS]

wrk comes from Debian (`apt-get install wrk`); run as root, the script installs it.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from xtok.server.bootstrap import clean_environment, spawn_dev

LEVELS = (1, 8, 32)
WORKERS = os.cpu_count() or 2  # the second xtok figure: `xtok server --workers` one per core
GOAL = 4.0  # xtok / moto at every level (issue 12)


@dataclass
class Target:
    name: str
    url: str
    proc: subprocess.Popen[str]
    headers: dict[str, str]
    body: bytes


def ensure_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False, env=env)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("wrk is missing: apt-get install wrk (Debian), then run again")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(port: int) -> None:
    for _ in range(400):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def client(url: str, service: str, creds: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",  # type: ignore[call-overload]
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
    )


def signed_get(url: str, creds: dict[str, str], body: bytes) -> dict[str, str]:
    request = AWSRequest(
        "POST",
        url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    keys = Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds.get("SessionToken"))
    SigV4Auth(keys, "secretsmanager", "us-east-1").add_auth(request)
    return {k: v.decode() if isinstance(v, bytes) else v for k, v in request.headers.items()}


def prepare(name: str, proc: subprocess.Popen[str], url: str, admin: dict[str, str]) -> Target:
    me = client(url, "sts", admin).get_caller_identity()
    client(url, "secretsmanager", admin).create_secret(Name="bench/db", SecretString="x" * 64)
    iam = client(url, "iam", admin)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": me["Arn"]}, "Action": "sts:AssumeRole"}
        ],
    }
    read = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "arn:aws:secretsmanager:*:*:secret:bench/*",
            }
        ],
    }
    iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps(trust))
    iam.put_role_policy(RoleName="bench", PolicyName="read", PolicyDocument=json.dumps(read))
    session = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "secretsmanager:GetSecretValue",
                "Resource": "arn:aws:secretsmanager:*:*:secret:bench/db-??????",
            }
        ],
    }
    creds = client(url, "sts", admin).assume_role(
        RoleArn=f"arn:aws:iam::{me['Account']}:role/bench",
        RoleSessionName="bench",
        Policy=json.dumps(session),
    )["Credentials"]
    body = json.dumps({"SecretId": "bench/db"}).encode()
    return Target(name, url, proc, signed_get(url, creds, body), body)


def start_xtok(workers: int) -> Target:
    proc, exports = spawn_dev("--workers", str(workers))
    admin = {
        "AccessKeyId": exports["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": exports["AWS_SECRET_ACCESS_KEY"],
    }
    name = "xtok server" if workers == 1 else f"xtok -w{workers}"
    return prepare(name, proc, exports["AWS_ENDPOINT_URL"], admin)


def start_moto() -> Target:
    port = free_port()
    moto = os.path.join(os.path.dirname(sys.executable), "moto_server")
    proc = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_environment(),
    )
    wait_for(port)
    admin = {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "x" * 40}
    return prepare("moto", proc, f"http://127.0.0.1:{port}", admin)


def start_noop(like: Target) -> Target:
    """This script again, serving a fixed answer on xtok's HTTP stack (see `serve_noop`)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--noop-server", str(port)],
        stderr=subprocess.DEVNULL,
        text=True,
        env=clean_environment(),
    )
    wait_for(port)
    url = f"http://127.0.0.1:{port}"
    return Target("no-op app", url, proc, {**like.headers, "Host": f"127.0.0.1:{port}"}, like.body)


def serve_noop(port: int) -> None:
    import uvicorn

    from xtok.server.transport import with_read_timeout

    answer = json.dumps({"Name": "bench/db", "SecretString": "x" * 64}).encode()
    headers = [
        (b"content-type", b"application/x-amz-json-1.1"),
        (b"content-length", b"%d" % len(answer)),
    ]

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": answer})

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        http=with_read_timeout(20),
        lifespan="off",
        log_level="warning",
        access_log=False,
        server_header=False,
    )
    uvicorn.Server(config).run()


def lua_script(target: Target, directory: Path) -> Path:
    lines = ['wrk.method = "POST"', f"wrk.body = {json.dumps(target.body.decode())}"]
    for key, value in target.headers.items():
        if key.lower() != "content-length":
            lines.append(f"wrk.headers[{json.dumps(key)}] = {json.dumps(value)}")
    path = directory / f"{target.name.replace(' ', '-')}.lua"
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Run:
    rate: float
    p50_ms: float
    p99_ms: float
    cpu_us: float  # the server's CPU time per request (its threads, user + system)


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its running children (the workers)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    own = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return own + sum(cpu_seconds(int(kid)) for kid in kids)


def wrk_run(wrk: str, target: Target, script: Path, connections: int, seconds: int) -> Run:
    cpu_before = cpu_seconds(target.proc.pid)
    out = subprocess.run(
        [
            wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            str(script),
            target.url + "/",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "Non-2xx" in out or "Socket errors" in out:
        raise SystemExit(f"{target.name}: failed requests under load:\n{out}")
    cpu = cpu_seconds(target.proc.pid) - cpu_before
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    count = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    return Run(rate, _latency(out, "50%"), _latency(out, "99%"), cpu / count * 1e6)


def _latency(out: str, quantile: str) -> float:
    value, unit = re.search(rf"{quantile}\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def median_runs(
    wrk: str, targets: list[Target], scripts: dict[str, Path], level: int, seconds: int, rounds: int
) -> dict[str, Run]:
    runs: dict[str, list[Run]] = {t.name: [] for t in targets}
    for _ in range(rounds):
        for t in targets:
            runs[t.name].append(wrk_run(wrk, t, scripts[t.name], level, seconds))
    return {name: sorted(rs, key=lambda r: r.rate)[len(rs) // 2] for name, rs in runs.items()}


def main() -> None:
    seconds = int(sys.argv[1]) if len(sys.argv) > 1 else 3
    rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 3
    wrk = ensure_wrk()
    xtok = start_xtok(1)
    targets = [xtok, start_xtok(WORKERS), start_moto(), start_noop(xtok)]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            scripts = {t.name: lua_script(t, Path(tmp)) for t in targets}
            for t in targets:  # warm up connections and caches alike
                wrk_run(wrk, t, scripts[t.name], 4, 1)
            print(
                f"{'connections':>11}  {'endpoint':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} "
                f"{'CPU us/req':>10}"
            )
            ours = [t.name for t in targets if t.name.startswith("xtok")]
            rates: dict[str, list[float]] = {name: [] for name in ours}
            ratios: dict[str, list[float]] = {name: [] for name in ours}
            for level in LEVELS:
                runs = median_runs(wrk, targets, scripts, level, seconds, rounds)
                for name, run in runs.items():
                    print(
                        f"{level:>11}  {name:<12} {run.rate:>8.0f} {run.p50_ms:>8.2f} "
                        f"{run.p99_ms:>8.2f} {run.cpu_us:>10.0f}"
                    )
                for name in ours:
                    rates[name].append(runs[name].rate)
                    ratios[name].append(runs[name].rate / runs["moto"].rate)
                    print(
                        f"{'':>11}  {name}: {ratios[name][-1]:.2f}x moto, "
                        f"{runs[name].rate / runs['no-op app'].rate:.2f}x the no-op app"
                    )
        print()
        for name in ours:
            trend = " -> ".join(f"{r:.0f}" for r in rates[name])
            print(
                f"{name}: minimum {min(ratios[name]):.2f}x moto over {LEVELS} connections "
                f"(goal >= {GOAL}x); req/s as connections rise: {trend}"
            )
    finally:
        for t in targets:
            t.proc.terminate()
            t.proc.wait(timeout=30)


if __name__ == "__main__":
    if sys.argv[1:2] == ["--noop-server"]:
        serve_noop(int(sys.argv[2]))
    else:
        main()
