"""What an approver reviews before minting, shared by `xtok approve` and `xtok inbox`: the
request's rows, how it differs from the last run of the same job this approver approved, and
the scoped mint it leads to. (A request code with control or bidi characters in any field does
not parse at all: `RequestCode.parse` refuses it.)"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from xtok.approval.request import RequestCode
from xtok.display import is_unsafe
from xtok.duration import format_duration
from xtok.regular_file import read_regular, replace_regular

if TYPE_CHECKING:
    from xtok.aws.mint import MintRequest

_HISTORY_LIMIT = 200


def unsafe_characters(text: str) -> list[str]:
    """The control, bidi and separator characters in `text`, as U+XXXX."""
    return [f"U+{ord(c):04X}" for c in text if is_unsafe(c)]


def secret_labels(request: RequestCode) -> list[str]:
    return [f"{r.env}={r.label}" + (" (file)" if r.as_file else "") for r in request.secrets]


def rows(request: RequestCode, role: str) -> list[tuple[str, str]]:
    """The approve screen's rows about the request itself (the identity's proof comes apart)."""
    who = request.identity
    return [
        ("CI", who.ci),
        ("job", who.job or "-"),
        ("build", (who.build or "-") + (f"  ({who.url})" if who.url else "")),
        ("commit", who.commit or "-"),
        ("secrets", ", ".join(secret_labels(request))),
        ("lifetime", format_duration(request.duration)),
        ("role", role + ("  (not the one requested)" if request.role not in (None, role) else "")),
        ("request", f"{request.id}  key {request.fingerprint}"),
    ]


def mint_request(
    request: RequestCode, role: str, mfa_serial: str | None, mfa_code: str | None
) -> MintRequest:
    """AssumeRole of `role` narrowed to exactly the requested secrets, labelled with the run."""
    from xtok.aws.mint import MintRequest
    from xtok.aws.policy import Target

    who = request.identity
    return MintRequest(
        duration=request.duration,
        role_arn=role,
        target=Target(tuple(r.name for r in request.secrets), None),
        label=who.label if (who.job or who.build) else f"xtok-{request.id}",
        mfa_serial=mfa_serial,
        mfa_code=mfa_code,
        tags=tuple(
            (f"xtok:{k}", v)
            for k, v in (
                ("job", who.job),
                ("build", who.build),
                ("commit", who.commit),
                ("request", request.id),
            )
            if v
        ),
    )


@dataclass(frozen=True)
class Approved:
    """One run this approver approved, as remembered for comparing the next one."""

    job: str
    secrets: tuple[str, ...]
    duration: int
    role: str
    proven: bool
    time: int


def _job_key(request: RequestCode) -> str:
    return f"{request.identity.ci}:{request.identity.job or '-'}"


class History:
    """The approver's own memory of what they approved, per job (0600 JSON in the XDG state
    directory): never the relay's word, which could hide a difference."""

    def __init__(self, path: Path | None = None) -> None:
        base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
        self.path = path or Path(base) / "xtok" / "approved.json"

    def _load(self) -> list[dict[str, Any]]:
        try:
            entries = json.loads(read_regular(self.path, what="approval history", follow=False))
        except (OSError, ValueError):
            return []
        return [e for e in entries if isinstance(e, dict)] if isinstance(entries, list) else []

    def last(self, request: RequestCode) -> Approved | None:
        key = _job_key(request)
        for entry in reversed(self._load()):
            if entry.get("job") == key:
                try:
                    return Approved(
                        job=key,
                        secrets=tuple(str(s) for s in entry["secrets"]),
                        duration=int(entry["duration"]),
                        role=str(entry["role"]),
                        proven=bool(entry["proven"]),
                        time=int(entry["time"]),
                    )
                except (KeyError, TypeError, ValueError):
                    return None
        return None

    def record(self, request: RequestCode, role: str, proven: bool) -> None:
        entries = self._load()[-(_HISTORY_LIMIT - 1) :]
        entries.append(
            {
                "job": _job_key(request),
                "secrets": sorted(r.label for r in request.secrets),
                "duration": request.duration,
                "role": role,
                "proven": proven,
                "time": int(time.time()),
            }
        )
        replace_regular(self.path, json.dumps(entries).encode(), what="approval history")


def differences(request: RequestCode, role: str, proven: bool, last: Approved | None) -> list[str]:
    """What is new compared with the last approved run of the same job."""
    if last is None:
        return ["first approval of this job (nothing to compare with)"]
    new = sorted({r.label for r in request.secrets} - set(last.secrets))
    found = [f"new secret {s}" for s in new]
    if request.duration > last.duration:
        found.append(
            f"longer lifetime {format_duration(request.duration)} "
            f"(was {format_duration(last.duration)})"
        )
    if role != last.role:
        found.append(f"other role {role} (was {last.role})")
    if last.proven and not proven:
        found.append("unproven identity (the last run was verified)")
    return found
