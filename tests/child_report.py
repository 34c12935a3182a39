"""The command the end-to-end tests run under `xtok run`.

It records what it received without ever writing a value: environment variable names, SHA-256
digests of the values, and the modes of any secret file. Then it prints the secret named by
argv[2] (to check masking) and exits with argv[3].
"""

import hashlib
import json
import os
import stat
import sys
from pathlib import Path

report, show, status = sys.argv[1], sys.argv[2], int(sys.argv[3])
info = {
    "keys": sorted(os.environ),
    "digests": sorted(hashlib.sha256(v.encode()).hexdigest() for v in os.environ.values()),
    "cmdline": Path(f"/proc/{os.getpid()}/cmdline").read_bytes().decode(errors="replace"),
    "files": {},
}
for key in sys.argv[4:]:
    path = os.environ[key]
    info["files"][key] = {
        "path": path,
        "mode": stat.S_IMODE(os.stat(path).st_mode),
        "dir_mode": stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode),
        "digest": hashlib.sha256(Path(path).read_bytes()).hexdigest(),
    }
with open(report, "w") as f:
    json.dump(info, f)
if show:
    value = os.environ[show]
    print(f"the secret is {value}!", flush=True)
    sys.stdout.write("split: " + value[:5])
    sys.stdout.flush()
    sys.stdout.write(value[5:] + "\n")
    print(f"stderr has {value} too", file=sys.stderr)
sys.exit(status)
