"""GetSecretValue throughput and latency: `xtok server` versus moto's server, same run.

Both endpoints run as subprocesses on loopback. Each gets the same setup (a secret, a role
with a permission policy, an assumed-role session with a session policy) and then the same
load: one SigV4-signed GetSecretValue request, signed once per peer and replayed over
keep-alive connections by C client threads (C = 1, 8, 32), so the client stays cheap and the
servers are what is measured. xtok verifies the signature, the session and the policies on
every request and writes an audit row; moto checks none of it.

    python bench/server_throughput.py [REQUESTS_PER_LEVEL]
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from xtok.server.bootstrap import clean_environment, spawn_dev

LEVELS = (1, 8, 32)


@dataclass
class Target:
    name: str
    url: str
    proc: subprocess.Popen[str]
    headers: dict[str, str]
    body: bytes


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


def start_xtok() -> tuple[subprocess.Popen[str], str, dict[str, str]]:
    proc, exports = spawn_dev()
    keys = {
        "AccessKeyId": exports["AWS_ACCESS_KEY_ID"],
        "SecretAccessKey": exports["AWS_SECRET_ACCESS_KEY"],
    }
    return proc, exports["AWS_ENDPOINT_URL"], keys


def start_moto() -> tuple[subprocess.Popen[str], str, dict[str, str]]:
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
    return (
        proc,
        f"http://127.0.0.1:{port}",
        {"AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "x" * 40},
    )


def client(url: str, service: str, creds: dict[str, str]) -> Any:
    return boto3.client(
        service,
        endpoint_url=url,
        region_name="us-east-1",  # type: ignore[call-overload]
        aws_access_key_id=creds["AccessKeyId"],
        aws_secret_access_key=creds["SecretAccessKey"],
        aws_session_token=creds.get("SessionToken"),
    )


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
    request = AWSRequest(
        "POST",
        url + "/",
        data=body,
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": "secretsmanager.GetSecretValue",
        },
    )
    SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]),
        "secretsmanager",
        "us-east-1",
    ).add_auth(request)
    headers = {
        k: v.decode() if isinstance(v, bytes) else v for k, v in request.prepare().headers.items()
    }
    return Target(name, url, proc, headers, body)


def load(target: Target, concurrency: int, total: int) -> tuple[float, list[float]]:
    per_thread = total // concurrency
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: list[str] = []
    url = urlsplit(target.url)
    barrier = threading.Barrier(concurrency + 1)

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)
        barrier.wait()
        for _ in range(per_thread):
            start = time.perf_counter()
            conn.request("POST", "/", body=target.body, headers=target.headers)
            response = conn.getresponse()
            payload = response.read()
            latencies[i].append(time.perf_counter() - start)
            if response.status != 200 or b"SecretString" not in payload:
                errors.append(f"{response.status}")
        conn.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(concurrency)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{target.name}: {len(errors)} failed requests, e.g. {errors[0]}")
    flat = sorted(x for lane in latencies for x in lane)
    return len(flat) / elapsed, flat


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 3200
    targets = [prepare("xtok server", *start_xtok()), prepare("moto", *start_moto())]
    try:
        for t in targets:
            load(t, 4, 200)  # warm up connections, caches and the JIT-less paths alike
        print(f"{'concurrency':>11}  {'endpoint':<12} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8}")
        ratios = []
        for level in LEVELS:
            rates = {}
            for t in targets:
                rate, lat = load(t, level, total)
                rates[t.name] = rate
                print(
                    f"{level:>11}  {t.name:<12} {rate:>8.0f} {pct(lat, 0.5):>8.2f} "
                    f"{pct(lat, 0.99):>8.2f}"
                )
            ratio = rates["xtok server"] / rates["moto"]
            ratios.append(ratio)
            print(f"{'':>11}  ratio xtok/moto: {ratio:.2f}x")
        print(f"\nminimum ratio over concurrency {LEVELS}: {min(ratios):.2f}x (target: >= 1.5x)")
    finally:
        for t in targets:
            t.proc.terminate()
            t.proc.wait(timeout=30)


if __name__ == "__main__":
    main()
