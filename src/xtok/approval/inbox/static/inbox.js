// The xtok inbox page. Every value comes from /api/state and is hostile: it reaches the DOM
// through textContent only (the CSP's Trusted Types refuse any HTML sink anyway).
"use strict";

const POLL_MS = 2000;
const csrf = document.querySelector('meta[name="xtok-csrf"]').content;
let state = null;
let fetchedAt = 0; // performance.now() when `state` arrived: the countdown's base
let shownId = null; // the request whose page is open
let shownDigest = ""; // and the digest of the request code it shows

const $ = (id) => document.getElementById(id);

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function serverNow() {
  return state.now + Math.floor((performance.now() - fetchedAt) / 1000);
}

function left(entry) {
  const s = Math.max(0, entry.expires - serverNow());
  const m = Math.floor(s / 60);
  return m >= 60 ? `${Math.floor(m / 60)}h${String(m % 60).padStart(2, "0")}m`
                 : `${m}m${String(s % 60).padStart(2, "0")}s`;
}

function say(text, isError) {
  $("status").textContent = text || "";
  $("status").className = isError ? "error" : "";
}

function identityCell(entry) {
  if (entry.refused) return el("td", "REFUSED: " + entry.refused, "refused");
  const id = entry.identity || { status: "refused", note: "" };
  if (id.status === "verified") {
    return el("td", `verified: ${id.subject || "(no repository claim)"}\nby ${id.issuer}`, "verified");
  }
  if (id.status === "unproven") return el("td", "UNPROVEN (only claimed)", "unproven");
  return el("td", "REFUSED: " + id.note, "refused");
}

function renderList() {
  const body = $("pending").tBodies[0];
  body.replaceChildren();
  for (const entry of state.pending) {
    const row = el("tr", null, "link");
    row.dataset.id = entry.id;
    // CI and commit under the job: what the run claims, next to what is verified.
    const run = `${entry.job ?? "?"}\n${entry.ci ?? "?"} @ ${(entry.commit ?? "-").slice(0, 12)}`;
    row.append(el("td", run), el("td", entry.build ?? "?"), identityCell(entry),
      el("td", (entry.secrets || []).join(", ")), el("td", entry.lifetime ?? "?"),
      el("td", entry.role ?? "?"), el("td", entry.waiting),
      el("td", left(entry), "countdown"), el("td", entry.fingerprint ?? "?"));
    row.addEventListener("click", () => { location.hash = "#request/" + entry.id; });
    body.append(row);
  }
  $("empty").hidden = state.pending.length > 0;
  const done = $("done").tBodies[0];
  done.replaceChildren();
  for (const entry of state.done) {
    const row = el("tr");
    row.dataset.id = entry.id;
    row.append(el("td", entry.job ?? "?"), el("td", entry.build ?? "?"),
      el("td", entry.state, entry.state), el("td", entry.approver),
      el("td", entry.reason), el("td", entry.id));
    done.append(row);
  }
}

function find(id) {
  return state.pending.concat(state.done).find((e) => e.id === id) || null;
}

function openRequest(id) {
  const entry = find(id);
  if (!entry) { say("no such request: it may have been purged", true); location.hash = ""; return; }
  shownId = id;
  shownDigest = entry.digest || "";
  $("request-title").textContent = `Request ${entry.id}: ${entry.job ?? "?"} #${entry.build ?? "?"}`;
  $("request-refused").hidden = !entry.refused;
  $("request-refused").textContent = entry.refused ? "REFUSED: " + entry.refused : "";
  const rows = $("request-rows").tBodies[0];
  rows.replaceChildren();
  for (const [key, value] of entry.rows || []) {
    const row = el("tr");
    row.append(el("th", key), el("td", value, "value"));
    rows.append(row);
  }
  const proof = entry.identity || { status: "refused", note: "" };
  const identity = $("identity");
  const claims = $("claims").tBodies[0];
  claims.replaceChildren();
  if (proof.status === "verified") {
    const bound = proof.binding === "key" ? "bound to this request's key"
      : "fixed audience: bound to this key from its first use";
    identity.textContent = `VERIFIED by ${proof.issuer} (${bound})`;
    identity.className = "verified";
    for (const [key, value] of proof.claims) {
      const row = el("tr");
      row.append(el("th", key), el("td", value, "value"));
      claims.append(row);
    }
  } else if (proof.status === "unproven") {
    identity.textContent = "UNPROVEN: CI, job, build and commit are " + proof.note;
    identity.className = "unproven";
  } else {
    identity.textContent = "REFUSED: " + proof.note;
    identity.className = "refused";
  }
  const diffs = $("differences");
  diffs.replaceChildren(...(entry.differences || []).map((d) => el("li", d, "diff")));
  if (!(entry.differences || []).length) diffs.append(el("li", "nothing new", "muted"));
  $("mfa-label").hidden = !state.mfa;
  $("mfa").value = "";
  $("reason").value = "";
  $("list-view").hidden = true;
  $("request-view").hidden = false;
  updateRequest();
}

function updateRequest() {
  const entry = find(shownId);
  const pending = entry && entry.state === "pending";
  $("request-left").textContent = pending ? left(entry) : "-";
  $("request-closed").hidden = pending;
  $("request-closed").textContent = entry ? `This request is ${entry.state}.` : "Purged.";
  const refused = !entry || entry.refused || !entry.identity || entry.identity.status === "refused";
  $("approve").disabled = !pending || Boolean(refused);
  $("deny").disabled = !pending;
}

function route() {
  const match = /^#request\/([0-9a-f]{16})$/.exec(location.hash);
  if (match && state) { openRequest(match[1]); return; }
  shownId = null;
  $("request-view").hidden = true;
  $("list-view").hidden = false;
  if (state) renderList();
}

async function refresh() {
  try {
    const resp = await fetch("api/state", { cache: "no-store" });
    const data = await resp.json();
    if (!resp.ok) throw new Error(data.error || resp.statusText);
    const first = state === null;
    state = data;
    fetchedAt = performance.now();
    $("who").textContent = `${state.me} on ${state.relay}`;
    if (first) route();
    else if (shownId) updateRequest();
    else renderList();
  } catch (err) {
    say("cannot read the inbox: " + err.message, true);
  }
}

async function post(path, body) {
  const resp = await fetch(path, {
    method: "POST",
    headers: { "Content-Type": "application/json", "X-Xtok-Csrf": csrf },
    body: JSON.stringify(body),
  });
  const data = await resp.json().catch(() => ({ error: resp.statusText }));
  if (!resp.ok) throw new Error(data.error + (data.tip ? ` (${data.tip})` : ""));
  return data.message;
}

async function answer(kind, body) {
  const id = shownId;
  $("approve").disabled = $("deny").disabled = true;
  say(kind === "approve" ? "minting and sealing…" : "denying…");
  try {
    say(await post(`api/requests/${id}/${kind}`, body));
    location.hash = "";
  } catch (err) {
    say(err.message, true);
  }
  await refresh();
}

$("approve").addEventListener("click", () => answer("approve", {
  mfa_code: $("mfa").value,
  digest: shownDigest, // what was on screen: the inbox refuses if the relay changed it since
}));
$("deny").addEventListener("click", () => answer("deny", { reason: $("reason").value }));
$("back").addEventListener("click", (event) => { event.preventDefault(); location.hash = ""; });
window.addEventListener("hashchange", route);
setInterval(refresh, POLL_MS);
setInterval(() => {
  if (!state) return;
  if (shownId) { updateRequest(); return; }
  for (const row of $("pending").tBodies[0].rows) {
    const entry = find(row.dataset.id);
    if (entry) row.querySelector(".countdown").textContent = left(entry);
  }
}, 1000);
refresh();
