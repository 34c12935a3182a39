"""A hostile command for `xtok run`: it looks everywhere a same-user process can for the token,
the run's ticket, request keys and AWS credentials, then tries to use what it found.

Usage: hostile_child.py NEEDLES REPORT STATE_DIR FOREIGN_TOKEN ENDPOINT_URL
NEEDLES is a JSON file {name: hex}; REPORT gets {"found": names, "denied": {...}, "opened": …}.
It never prints what it reads.
"""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

needles_file, report_file, state_dir, foreign_token, endpoint = sys.argv[1:6]
needles = {k: bytes.fromhex(v) for k, v in json.loads(Path(needles_file).read_text()).items()}
me = os.getpid()
seen: list[bytes] = []
denied: dict[str, str] = {}


def grab(label: str, read) -> None:  # type: ignore[no-untyped-def]
    try:
        seen.append(read())
    except OSError as exc:
        denied[label] = type(exc).__name__


def read_memory(pid: int) -> bytes:
    chunks = []
    maps = Path(f"/proc/{pid}/maps").read_text().splitlines()
    with open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            span, perms = line.split()[:2]
            start, end = (int(x, 16) for x in span.split("-"))
            if "r" not in perms or end - start > 1 << 28:
                continue
            try:
                mem.seek(start)
                chunks.append(mem.read(end - start))
            except OSError:
                pass
    return b"".join(chunks)


def read_fds(pid: int) -> bytes:
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        target = os.readlink(f"/proc/{pid}/fd/{fd}")
        out.append(target.encode())
        if target.startswith("/") and os.path.isfile(target):
            out.append(Path(target).read_bytes())
    return b"\n".join(out)


# Every process this user may look at: xtok (the parent), its janitor, anything else.
for entry in os.listdir("/proc"):
    if not entry.isdigit() or int(entry) == me:
        continue
    pid = int(entry)
    tag = "parent" if pid == os.getppid() else f"pid {pid}"
    grab(f"{tag} cmdline", lambda p=pid: Path(f"/proc/{p}/cmdline").read_bytes())
    grab(f"{tag} environ", lambda p=pid: Path(f"/proc/{p}/environ").read_bytes())
    grab(f"{tag} mem", lambda p=pid: read_memory(p))
    grab(f"{tag} fds", lambda p=pid: read_fds(p))

# What the command line and the environment point at; the state directory.
seen.append("\0".join(f"{k}={v}" for k, v in os.environ.items()).encode())
parent_args = Path(f"/proc/{os.getppid()}/cmdline").read_bytes().split(b"\0")
for arg in parent_args:
    path = arg.decode(errors="replace")
    if path.startswith("/") and os.path.isfile(path):
        grab(f"file {path}", lambda p=path: Path(p).read_bytes())
for name in os.listdir(state_dir):
    grab(f"state {name}", lambda n=name: (Path(state_dir) / n).read_bytes())

blob = b"\n".join(seen)
found = sorted(name for name, value in needles.items() if value in blob)

# Use what was found: every sealed token and ticket in sight, against every pending request.
tokens = set(re.findall(rb"xtoks1\.[A-Za-z0-9_.-]+", blob)) | {Path(foreign_token).read_bytes()}
tickets = set(re.findall(rb"xtokt1\.[A-Za-z0-9_.-]+", blob)) | {b""}
opened = []
for token in tokens:
    for ticket in tickets:
        env = {"PATH": os.environ.get("PATH", ""), "XTOK_TOKEN": token.decode()}
        env.update(XTOK_TICKET=ticket.decode(), AWS_ENDPOINT_URL=endpoint, AWS_REGION="us-east-1")
        argv = ["-m", "xtok", "run", "--sealed", "--state-dir", state_dir, "--", "true"]
        res = subprocess.run(
            [sys.executable, *argv],
            env={**env, "PYTHONPATH": os.environ.get("PYTHONPATH", "")},
            capture_output=True,
            check=False,
        )
        if res.returncode == 0:
            opened.append(token[:12].decode())
Path(report_file).write_text(
    json.dumps(
        {
            "found": found,
            "denied": denied,
            "opened": opened,
            "tried": [len(tokens), len(tickets)],
        }
    )
)
