"""The inbox's view of the relay's requests: every value checked and escaped here, verified
identity apart from claimed, differences from the last approved run of the same job."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping
from typing import Any

from xtok import display
from xtok.approval import oidc, review
from xtok.approval.request import RequestCode
from xtok.duration import format_duration
from xtok.errors import Error

_RELAY_FIELDS = ("id", "state", "approver", "reason")


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


class Viewer:
    """Builds the page's JSON for each relay entry; proofs are verified once per content."""

    def __init__(self, trust: oidc.Trust, history: review.History) -> None:
        self.trust, self.history = trust, history
        self._proofs: dict[str, tuple[float, dict[str, Any]]] = {}

    def entry(self, raw: Mapping[str, Any], now: int) -> dict[str, Any]:
        rid = str(raw.get("id", ""))
        shown: dict[str, Any] = {
            "id": display.shown(rid, 40),
            "state": display.shown(raw.get("state", "?"), 20),
            "created": _int(raw.get("created")),
            "expires": _int(raw.get("expires")),
            "answered": _int(raw.get("answered")),
            "approver": display.shown(raw.get("approver") or "", 200),
            "reason": display.shown(raw.get("reason") or "", 200),
            "refused": None,
        }
        created = shown["created"] or now
        shown["waiting"] = format_duration(max(0, now - created))
        unsafe = [f for f in _RELAY_FIELDS if review.unsafe_characters(str(raw.get(f) or ""))]
        try:
            request = RequestCode.parse(str(raw.get("request", "")))
        except Error as exc:
            shown["refused"] = f"the request code does not parse: {exc.message}"
            return shown
        if request.id != rid:
            shown["refused"] = "the relay listed this request under another id"
        role = request.role or ""
        shown.update(
            ci=display.shown(request.identity.ci),
            job=display.shown(request.identity.job or "-"),
            build=display.shown(request.identity.build or "-"),
            url=display.shown(request.identity.url or ""),
            commit=display.shown(request.identity.commit or "-"),
            secrets=[display.shown(s) for s in review.secret_labels(request)],
            lifetime=format_duration(request.duration),
            role=display.shown(role or "(none named)"),
            fingerprint=request.fingerprint,
            digest=request.digest().hex(),  # Approve sends it back: what the approver saw
            rows=[[k, display.shown(v)] for k, v in review.rows(request, role or "-")],
        )
        if unsafe:
            shown["refused"] = f"the relay's {unsafe[0]} holds control or bidi characters"
        if shown["state"] != "pending":
            return shown  # listed below: no proof to check, nothing to compare
        proof = raw.get("proof")
        shown["identity"] = self._identity(proof if isinstance(proof, str) else None, request)
        proven = shown["identity"]["status"] == "verified"
        shown["differences"] = review.differences(request, role, proven, self.history.last(request))
        return shown

    def _identity(self, proof: str | None, request: RequestCode) -> dict[str, Any]:
        if not proof:
            note = "only claimed by the request: compare the key fingerprint with the run's log"
            if self.trust.require_proof:
                return {"status": "refused", "note": "no OIDC proof, and approver.toml needs one"}
            return {"status": "unproven", "note": note}
        key = hashlib.sha256(f"{request.encode()}\n{proof}".encode()).hexdigest()
        cached = self._proofs.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        try:
            verified = oidc.verify(proof, request, self.trust)  # listing: nothing claimed yet
            shown: dict[str, Any] = {
                "status": "verified",
                "issuer": display.shown(verified.issuer),
                "binding": verified.binding,
                "subject": display.shown(
                    verified.claims.get("repository") or verified.claims.get("project_path") or ""
                ),
                "claims": [[k, display.shown(v)] for k, v in verified.shown()],
            }
        except Error as exc:
            shown = {"status": "refused", "note": display.shown(exc.message)}
        self._proofs[key] = (time.monotonic() + 60, shown)
        return shown
