"""Synthetic microservice logs in the user's day-file format, with ground-truth labels.

The demo data and the test fixtures come from here. Six services (gateway, research,
manager, auth, billing, notification) each run a few request workflows written as small
grammars: sequences with optional steps, branches, loops (retries, pagination, batch
items) and interleaved parallel sub-calls, sharing common events such as "request
received" / "response sent". A seed also jitters every probability and loop length, so
each seed is a slightly different system of the same family, not one fixed puzzle.
With ``drift`` > 0 the system also moves from day to day, as real services do (traffic
mix, feature usage): same grammar, shifted path frequencies.

Normal data is not clean: rare but legitimate paths (a route reload, a refund), WARN
lines (slow query, retry), benign ERROR lines (a client 4xx, a timeout that a retry
recovers), and background lines (heartbeats, metrics, GC) that imperfect session
grouping mixes into some sessions. So ``has_error`` is only a weak label and novelty
alone is not a perfect detector. Anomalies are injected by kind (:data:`ANOMALY_KINDS`:
unseen event, missing step, out-of-order steps, repetition burst, truncation, another
service's event, error cascade) and written to ``labels.csv``; many carry no error line.

Output of :func:`generate`: ``preprocessed_logs_YYYY-MM-DD.json`` per day (a JSON array,
byte-identical to ``json.dump(sessions, f, ensure_ascii=False)``), ``labels.csv``
(``file,session_id,label,anomaly_kind``) and ``templates.tsv`` (``event_id, service,
template``).
"""

from __future__ import annotations

import csv
import datetime as dt
import itertools
import math
import random
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from radar.data.files import DayFileWriter, day_file_name
from radar.data.labels import LABELS_NAME, write_labels
from radar.data.records import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN
from radar.errors import RadarError
from radar.fsutil import atomic_write, atomic_write_text

ANOMALY_KINDS = ("unseen_event", "missing_step", "out_of_order", "repetition_burst",
                 "truncated", "cross_service", "error_cascade")

# key, service ("shared": any service), level, text; {field} slots are filled per line.
_TEMPLATE_TABLE = """
req_in shared INFO Request received: {method} {path} from {ip}
resp_out shared INFO Response sent: status={status} latency={ms}ms
auth_ok shared INFO Auth token validated for user {user}
cache_hit shared INFO Cache hit for key {key}
cache_miss shared INFO Cache miss for key {key}
db_query shared INFO DB query on {table} returned {rows} rows in {ms}ms
db_slow shared WARN Slow query on {table}: {slow_ms}ms exceeds 1000ms
call_out shared INFO Calling {target} {path}
call_done shared INFO Call to {target} completed status=200 in {ms}ms
call_retry shared WARN Call to {target} failed (connection reset), retry attempt {attempt_next}
call_retry_ok shared INFO Call to {target} succeeded after {attempt} retries
client_err shared ERROR Client error {code4}: {reason} for {path}
up_5xx shared ERROR Upstream {target} returned {code5}
timeout shared ERROR Timeout after {slow_ms}ms waiting for {target}
cb_open shared ERROR Circuit breaker OPEN for {target}
req_fail shared ERROR Request failed: status={code5} error={exc}
bg_heartbeat shared INFO Heartbeat sent to registry (instance {inst})
bg_metrics shared INFO Metrics flushed: {n} series
bg_pool shared INFO Connection pool stats: active={n} idle={n}
bg_gc shared INFO GC young generation pause {ms}ms
bg_cfg shared INFO Feature flags refreshed ({n} flags)
gw_route gateway INFO Route matched {route} -> {target}
gw_rate gateway INFO Rate limit check passed for client {client} ({n}/1000)
gw_rate_warn gateway WARN Rate limit nearly reached for client {client} ({n_high}/1000)
gw_cors gateway INFO CORS preflight handled for origin {origin}
gw_health gateway INFO Health check from {ip}
gw_health_ok gateway INFO Health check OK ({n} upstreams healthy)
gw_agg gateway INFO Aggregating {n} downstream calls for {route}
gw_agg_done gateway INFO Aggregation complete in {ms}ms
gw_ws_open gateway INFO WebSocket upgrade for {user} on {route}
gw_ws_frame gateway INFO Frame forwarded to {target} ({bytes} bytes)
gw_ws_ping gateway INFO WebSocket ping/pong rtt={ms}ms
gw_ws_close gateway INFO WebSocket closed code=1000 after {sec}s
gw_token_refresh gateway INFO Token near expiry for {user}, refreshed via auth
gw_deprecated gateway WARN Deprecated API version v1 used by client {client}
gw_reload gateway INFO Route table reload requested by {user}
gw_reloaded gateway INFO Routes reloaded ({n} routes)
rs_parse research INFO Search query parsed: '{q}' ({n} terms)
rs_shard research INFO Index shard {shard} answered {rows} hits in {ms}ms
rs_merge research INFO Results merged: {rows} hits
rs_page research INFO Page {page_next} fetched ({n} results)
rs_exp_create research INFO Experiment {exp} created by {user}
rs_dataset research INFO Dataset {dataset} loaded ({rows} rows)
rs_step research INFO Experiment {exp} step {i_next} done loss={loss}
rs_ckpt research INFO Checkpoint saved for {exp} at step {i}
rs_gpu_warn research WARN GPU memory at {pct}% for {exp}
rs_exp_done research INFO Experiment {exp} finished in {sec}s
rs_upload research INFO Upload started: {file} ({bytes} bytes)
rs_chunk research INFO Chunk {i_next} of {file} stored
rs_scan research INFO Virus scan passed for {file}
rs_index research INFO Document {doc} indexed ({n} pages)
rs_thumb research INFO Thumbnail generated for {doc}
rs_rebalance research INFO Index shard {shard} rebalanced
mg_perm manager INFO Permission check for {user} on {resource}: granted
mg_update manager INFO Record {record} updated by {user}
mg_audit manager INFO Audit log written for {record}
mg_job_start manager INFO Batch job {job} started ({n} items)
mg_lock manager INFO Acquired lock {lock}
mg_item manager INFO Processing item {i_next} of job {job}
mg_item_warn manager WARN Item {i} of job {job} has no optional field '{fieldname}'
mg_item_ok manager INFO Item {i} committed
mg_item_skip manager INFO Item {i} skipped: unchanged
mg_unlock manager INFO Released lock {lock}
mg_job_done manager INFO Batch job {job} completed in {sec}s
mg_tick manager INFO Scheduler tick #{n}
mg_due manager INFO Found {n} due tasks
mg_dispatch manager INFO Dispatching task {task} to {target}
mg_tick_done manager INFO Scheduler tick finished in {ms}ms
au_login auth INFO Login attempt for {user} from {ip}
au_ldap auth INFO LDAP bind ok for {user} in {ms}ms
au_pw_ok auth INFO Password verified for {user}
au_pw_bad auth ERROR Invalid credentials for {user} (attempt {attempt_next})
au_mfa_send auth INFO MFA challenge sent to {user} via {channel}
au_mfa_ok auth INFO MFA verified for {user}
au_token auth INFO Session token issued for {user} (ttl {ttl}s)
au_refresh auth INFO Refresh token validated for {user}
au_access auth INFO Access token issued for {user}
au_revoke auth INFO Session {sess} revoked
au_reset auth INFO Password reset requested for {user}
au_reset_mail auth INFO Password reset mail queued for {user}
bl_inv_start billing INFO Invoice {invoice} generation started for account {account}
bl_line billing INFO Line item {i_next} priced: {amount} KRW
bl_discount billing INFO Discount {coupon} applied to {invoice}
bl_tax billing INFO Tax calculated for {invoice}: {amount} KRW
bl_inv_store billing INFO Invoice {invoice} stored
bl_email billing INFO Invoice email queued for {user}
bl_intent billing INFO Payment intent {payment} created ({amount} KRW)
bl_pay_ok billing INFO Payment {payment} authorized by provider
bl_declined billing ERROR Payment {payment} declined: {decline}
bl_ledger billing INFO Ledger entry written for {payment}
bl_webhook billing INFO Webhook payment.succeeded delivered for {payment}
bl_refund billing INFO Refund requested for {payment} ({amount} KRW)
bl_refund_ok billing INFO Refund for {payment} completed
nt_job notification INFO Notification job {job} received ({n} recipients)
nt_render notification INFO Template '{tmpl}' rendered in {ms}ms
nt_deliver notification INFO Message delivered to {user} via {channel}
nt_defer notification WARN Delivery to {user} deferred: mailbox full
nt_done notification INFO Notification job {job} done
an_npe anomaly ERROR NullPointerException at {cls}.{func}({cls}.java:{line})
an_deadlock anomaly ERROR Deadlock detected on table {table}, transaction rolled back
an_state anomaly WARN Unexpected state transition {state_a} -> {state_b} for {record}
an_checksum anomaly WARN Checksum mismatch for message {msgid}
an_pool anomaly ERROR Connection pool exhausted ({n} active, 0 idle)
an_callback anomaly INFO Received callback from unregistered host {ip}
an_config anomaly INFO Configuration reloaded: key {cfg} changed
an_oom anomaly ERROR java.lang.OutOfMemoryError: Java heap space
an_gc anomaly WARN GC pause of {slow_ms}ms
an_dup anomaly INFO Duplicate request id {rid} detected, processing anyway
"""


@dataclass(frozen=True)
class Template:
    id: int
    key: str
    service: str        # "shared", a service name, or "anomaly" (never in normal sessions)
    level: str
    text: str

    @property
    def pattern(self) -> str:
        """The template as a log parser (Drain) would print it."""
        return re.sub(r"\{\w+\}", "<*>", self.text)


def _load_templates() -> dict[str, Template]:
    rows = [line.split(None, 3) for line in _TEMPLATE_TABLE.strip().splitlines()]
    # Parsers number templates in order of first sight over the whole corpus, unrelated to
    # services, and one corpus slice sees only some of them: sparse shuffled ids from a
    # fixed seed (independent of the data seed) keep ids stable across generated sets.
    # Ids run past 101/102, which collide with CLS/SEP in token_ids exactly as in the
    # user's data.
    ids = random.Random(20250529).sample(range(1, 3 * len(rows)), len(rows))
    return {key: Template(i, key, svc, lvl, text) for i, (key, svc, lvl, text) in zip(ids, rows)}


TEMPLATES = _load_templates()
# A release's new log line (``generate(release=...)``): a benign INFO line no earlier day
# logs, with an id outside the table's so every other id stays what it was.
RELEASE_KEY = "rel_feature_flag"
TEMPLATES[RELEASE_KEY] = Template(3 * len(TEMPLATES) + 1, RELEASE_KEY, "shared", "INFO",
                                  "Feature flag checkout-v2 evaluated for {user}: enabled")


_NOISE_KEYS = [key for key in TEMPLATES if key.startswith("bg_")]


# --- workflow grammar --------------------------------------------------------------------
# Each node emits (template key, required) pairs. "Required" events appear in every run of
# their workflow in a fixed order; anomaly injection deletes or swaps only those.

@dataclass
class Count:
    """A loop count: uniform in [lo, hi], or log-normal around ``median`` clipped to it."""
    lo: int
    hi: int
    median: float = 0.0
    sigma: float = 0.0

    def draw(self, rng: random.Random) -> int:
        if self.sigma <= 0:
            return rng.randint(self.lo, self.hi)
        return min(self.hi, max(self.lo, round(self.median * math.exp(rng.gauss(0, self.sigma)))))

    def jitter(self, rng: random.Random) -> Count:
        return Count(self.lo, self.hi, self.median * rng.uniform(0.75, 1.3), self.sigma)

    def drift(self, rng: random.Random, sigma: float) -> Count:
        if self.sigma <= 0:         # uniform counts keep their range
            return self
        return Count(self.lo, self.hi, self.median * _step(rng, sigma / 4), self.sigma)


def _step(rng: random.Random, sigma: float) -> float:
    """One multiplicative random-walk step: log-normal with median 1."""
    return math.exp(rng.gauss(0, sigma))


class Node:
    def emit(self, rng: random.Random, out: list, required: bool) -> None:
        raise NotImplementedError

    def jitter(self, rng: random.Random) -> Node:
        return self

    def drift(self, rng: random.Random, sigma: float) -> Node:
        """This node a day later: branch weights, optional-step odds and loop lengths
        moved by one random-walk step (``sigma``); the grammar itself stays."""
        return self


@dataclass
class Ev(Node):
    key: str

    def emit(self, rng, out, required):
        out.append((self.key, required))


@dataclass
class Seq(Node):
    children: list

    def emit(self, rng, out, required):
        for child in self.children:
            child.emit(rng, out, required)

    def jitter(self, rng):
        return Seq([c.jitter(rng) for c in self.children])

    def drift(self, rng, sigma):
        return Seq([c.drift(rng, sigma) for c in self.children])


@dataclass
class Opt(Node):
    p: float
    child: Node

    def emit(self, rng, out, required):
        if rng.random() < self.p:
            self.child.emit(rng, out, False)

    def jitter(self, rng):
        return Opt(min(0.95, self.p * rng.uniform(0.6, 1.5)), self.child.jitter(rng))

    def drift(self, rng, sigma):
        return Opt(min(0.95, self.p * _step(rng, sigma / 2)), self.child.drift(rng, sigma))


@dataclass
class Alt(Node):
    weights: list
    children: list

    def emit(self, rng, out, required):
        rng.choices(self.children, self.weights)[0].emit(rng, out, False)

    def jitter(self, rng):
        return Alt([w * rng.uniform(0.6, 1.5) for w in self.weights],
                   [c.jitter(rng) for c in self.children])

    def drift(self, rng, sigma):
        return Alt([w * _step(rng, sigma) for w in self.weights],
                   [c.drift(rng, sigma) for c in self.children])


@dataclass
class Rep(Node):
    count: Count
    child: Node

    def emit(self, rng, out, required):
        for _ in range(self.count.draw(rng)):
            self.child.emit(rng, out, False)

    def jitter(self, rng):
        return Rep(self.count.jitter(rng), self.child.jitter(rng))

    def drift(self, rng, sigma):
        return Rep(self.count.drift(rng, sigma), self.child.drift(rng, sigma))


@dataclass
class Par(Node):
    """``count`` concurrent copies of ``child`` whose events interleave (order kept per copy)."""
    count: Count
    child: Node

    def emit(self, rng, out, required):
        branches = []
        for _ in range(self.count.draw(rng)):
            branch: list = []
            self.child.emit(rng, branch, False)
            branches.append(branch[::-1])
        while branches:
            branch = rng.choice(branches)
            out.append(branch.pop())
            if not branch:
                branches.remove(branch)

    def jitter(self, rng):
        return Par(self.count, self.child.jitter(rng))

    def drift(self, rng, sigma):
        return Par(self.count, self.child.drift(rng, sigma))


def _s(*parts) -> Seq:
    return Seq([Ev(p) if isinstance(p, str) else p for p in parts])


def _opt(p, *parts) -> Opt:
    return Opt(p, _s(*parts))


def _alt(*options) -> Alt:
    return Alt([w for w, *_ in options], [_s(*parts) for _, *parts in options])


def _rep(count: Count, *parts) -> Rep:
    return Rep(count, _s(*parts))


def _logn(median, sigma, lo, hi) -> Count:
    return Count(lo, hi, median, sigma)


def _call(retry_p=0.04) -> Seq:
    """An outbound call that sometimes needs a retry or two (or a timeout) to succeed."""
    trouble = _alt((0.85, _rep(Count(1, 2), "call_retry")), (0.15, "timeout", "call_retry"))
    return _s("call_out", _opt(retry_p, trouble, "call_retry_ok"), "call_done")


def _db(slow_p=0.04) -> Seq:
    return _s("db_query", _opt(slow_p, "db_slow"))


def _service_table() -> dict[str, tuple[float, list[tuple[float, str, Node]]]]:
    """service -> (share of sessions, [(share within service, workflow name, grammar)])."""
    auth = _alt((0.7, "auth_ok"), (0.3, _call(0.02), "auth_ok"))
    return {
        "gateway": (0.40, [
            (0.52, "proxy", _s("req_in", auth, _alt((0.98, "gw_rate"), (0.02, "gw_rate_warn")),
                               _opt(0.05, "gw_token_refresh"), _opt(0.01, "gw_deprecated"),
                               "gw_route",
                               _rep(_logn(1.5, 0.7, 1, 12), _call()),
                               _opt(0.02, "client_err"), "resp_out")),
            (0.16, "aggregate", _s("req_in", "auth_ok", "gw_rate", "gw_agg",
                                   Par(Count(2, 6), _call(0.03)), "gw_agg_done", "resp_out")),
            (0.10, "health", _s("gw_health", "gw_health_ok")),
            (0.06, "preflight", _s("req_in", "gw_cors", "resp_out")),
            (0.002, "reload", _s("req_in", "auth_ok", "gw_reload", "gw_reloaded", "resp_out")),
            (0.14, "websocket", _s("req_in", "auth_ok", "gw_ws_open",
                                   _rep(_logn(28, 1.3, 1, 1500),
                                        _alt((0.85, "gw_ws_frame"), (0.15, "gw_ws_ping"))),
                                   "gw_ws_close")),
        ]),
        "research": (0.18, [
            (0.55, "search", _s("req_in", "auth_ok", "rs_parse",
                                _alt((0.35, "cache_hit"),
                                     (0.65, "cache_miss", Par(Count(3, 8), _s("rs_shard")),
                                      _opt(0.01, "rs_rebalance"), "rs_merge")),
                                _rep(_logn(1.5, 1.0, 0, 40), "rs_page"), "resp_out")),
            (0.20, "experiment", _s("req_in", "auth_ok", "rs_exp_create", "rs_dataset", _db(),
                                    _rep(_logn(22, 0.9, 3, 400), "rs_step",
                                         _opt(0.08, "rs_ckpt"), _opt(0.01, "rs_gpu_warn")),
                                    "rs_exp_done", "resp_out")),
            (0.25, "upload", _s("req_in", "auth_ok", "rs_upload",
                                _rep(_logn(4, 0.8, 1, 150), "rs_chunk"), "rs_scan", "rs_index",
                                _opt(0.5, "rs_thumb"), _db(), "resp_out")),
        ]),
        "manager": (0.14, [
            (0.50, "admin", _s("req_in", "auth_ok", "mg_perm",
                               _rep(_logn(2, 0.6, 1, 10), _db()),
                               _opt(0.6, "mg_update", "mg_audit"),
                               _opt(0.03, "client_err"), "resp_out")),
            (0.20, "batch", _s("mg_job_start", "mg_lock",
                               _rep(_logn(16, 1.1, 1, 900), "mg_item",
                                    _opt(0.02, "mg_item_warn"),
                                    _alt((0.85, "mg_item_ok"), (0.15, "mg_item_skip"))),
                               "mg_unlock", "mg_job_done")),
            (0.30, "scheduler", _s("mg_tick", "mg_due", _rep(Count(0, 6), "mg_dispatch"),
                                   "mg_tick_done")),
        ]),
        "auth": (0.13, [
            (0.35, "login", _s("req_in", "au_login",
                               _alt((0.96, _alt((0.5, "au_ldap"), (0.5, _db())), "au_pw_ok",
                                     _opt(0.3, "au_mfa_send", "au_mfa_ok"), "au_token"),
                                    (0.04, "au_pw_bad", "client_err")),
                               "resp_out")),
            (0.50, "refresh", _s("req_in", "au_refresh",
                                 _alt((0.7, "cache_hit"), (0.3, "cache_miss", _db())),
                                 "au_access", "resp_out")),
            (0.15, "logout", _s("req_in", "auth_ok", "au_revoke", "resp_out")),
            (0.02, "reset", _s("req_in", "au_reset", _db(), "au_reset_mail", "resp_out")),
        ]),
        "billing": (0.09, [
            (0.40, "invoice", _s("req_in", "auth_ok", "bl_inv_start", _db(),
                                 _rep(_logn(6, 0.8, 1, 200), "bl_line"),
                                 _opt(0.2, "bl_discount"), "bl_tax", "bl_inv_store",
                                 _opt(0.6, "bl_email"), "resp_out")),
            (0.60, "payment", _s("req_in", "auth_ok", "bl_intent", _call(0.06),
                                 _alt((0.95, "bl_pay_ok", "bl_ledger", _opt(0.5, "bl_webhook")),
                                      (0.05, "bl_declined", "client_err")),
                                 "resp_out")),
            (0.03, "refund", _s("req_in", "auth_ok", "bl_refund", _call(0.06), "bl_refund_ok",
                                "bl_ledger", "resp_out")),
        ]),
        "notification": (0.06, [
            (1.0, "send", _s("nt_job", "nt_render",
                             _rep(_logn(5, 1.0, 1, 300),
                                  _alt((0.97, "nt_deliver"), (0.03, "nt_defer"))),
                             "nt_done")),
        ]),
    }


@dataclass
class SystemModel:
    """One member of the family: the service table with seed-jittered parameters."""
    services: list[str]
    service_weights: list[float]
    workflows: dict[str, tuple[list[float], list[Node]]]
    own_keys: dict[str, list[str]]      # service -> its service-specific template keys
    noise_p: float                      # share of sessions with background lines mixed in

    @classmethod
    def build(cls, rng: random.Random) -> SystemModel:
        table = _service_table()
        services = list(table)
        weights = [table[s][0] * rng.uniform(0.8, 1.25) for s in services]
        workflows = {s: ([w * rng.uniform(0.8, 1.25) for w, _, _ in table[s][1]],
                         [node.jitter(rng) for _, _, node in table[s][1]]) for s in services}
        own = {s: [t.key for t in TEMPLATES.values() if t.service == s] for s in services}
        return cls(services, weights, workflows, own, 0.12 * rng.uniform(0.5, 1.5))

    def drifted(self, rng: random.Random, sigma: float) -> SystemModel:
        """The system a day later, as real services move between days: the traffic mix,
        the workflow and branch choice weights each take a log-normal step (``sigma``),
        optional steps and loop lengths a smaller one. Same grammar, same events."""
        weights = [w * _step(rng, sigma) for w in self.service_weights]
        workflows = {s: ([w * _step(rng, sigma) for w in shares],
                         [node.drift(rng, sigma) for node in nodes])
                     for s, (shares, nodes) in self.workflows.items()}
        return SystemModel(self.services, weights, workflows, self.own_keys, self.noise_p)

    def normal_session(self, rng: random.Random, service: str) -> list[tuple[str, bool]]:
        weights, nodes = self.workflows[service]
        out: list[tuple[str, bool]] = []
        rng.choices(nodes, weights)[0].emit(rng, out, True)
        if rng.random() < self.noise_p:
            # Grouping lines into sessions by thread or trace is imperfect: background
            # lines (heartbeats, metrics, GC) land inside sessions at random points.
            for _ in range(rng.choice((1, 1, 1, 2, 3))):
                out.insert(rng.randint(1, len(out)), (rng.choice(_NOISE_KEYS), False))
        return out


# --- anomalies ---------------------------------------------------------------------------

_ANOMALY_KEYS = [t.key for t in TEMPLATES.values() if t.service == "anomaly"]


def _inject(kind: str, rng: random.Random, events: list[tuple[str, bool]], service: str,
            model: SystemModel) -> list[str] | None:
    """The session's keys with one anomaly of ``kind``, or None where it does not apply."""
    keys = [key for key, _ in events]
    counts = Counter(keys)
    required = [i for i, (key, req) in enumerate(events) if req and counts[key] == 1]
    if kind == "unseen_event":                      # a template never logged in normal runs
        for _ in range(rng.choice((1, 1, 1, 2))):
            keys.insert(rng.randint(1, len(keys)), rng.choice(_ANOMALY_KEYS))
    elif kind == "missing_step":                    # a required step silently skipped
        if not required:
            return None
        del keys[rng.choice(required)]
    elif kind == "out_of_order":                    # two required steps swapped
        pairs = [(a, b) for a, b in itertools.combinations(required, 2) if b - a <= 4]
        if not pairs:
            return None
        a, b = rng.choice(pairs)
        keys[a], keys[b] = keys[b], keys[a]
    elif kind == "repetition_burst":                # retry storm or a step looping
        calls = [i for i, key in enumerate(keys) if key == "call_out"]
        if calls and rng.random() < 0.5:
            at = rng.choice(calls) + 1
            keys[at:at] = ["call_retry"] * rng.randint(6, 40) + ["call_retry_ok"]
        else:
            at = rng.choice(required or range(len(keys)))
            keys[at:at] = [keys[at]] * rng.randint(4, 40)
    elif kind == "truncated":                       # the workflow stops early, no error
        # Cut at least one workflow event: losing a trailing background line is no anomaly.
        last = max(i for i, key in enumerate(keys) if key not in _NOISE_KEYS)
        if len(keys) < 3 or last < max(1, len(keys) // 5):
            return None
        keys = keys[:rng.randint(max(1, len(keys) // 5), last)]
    elif kind == "cross_service":                   # another service's event shows up here
        other = rng.choice([s for s in model.services if s != service])
        keys.insert(rng.randint(1, max(1, len(keys) - 1)), rng.choice(model.own_keys[other]))
    elif kind == "error_cascade":                   # a downstream failure propagates
        calls = [i for i, key in enumerate(keys) if key == "call_out"]
        at = rng.choice(calls) + 1 if calls else rng.randint(1, max(1, len(keys) - 1))
        fail = ("timeout", "up_5xx")
        cascade = [rng.choice(fail)]
        if rng.random() < 0.6:
            cascade += ["call_retry", rng.choice(fail)]
        if rng.random() < 0.5:
            cascade.append("cb_open")
        cascade.append("req_fail")
        if keys[0] == "req_in" and rng.random() < 0.7:
            cascade.append("resp_out")
        keys = keys[:at] + cascade
    else:
        raise ValueError(f"unknown anomaly kind {kind!r}")
    return keys


# --- rendering raw lines -----------------------------------------------------------------

_USERS = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy",
          "mallory", "oscar", "peggy", "trent", "victor", "walter", "yuna", "minho")
_KO_USERS = ("김민준", "이서연", "박지훈", "최수아", "정예준", "강하은", "윤도현", "한지민")
_PATHS = {
    "gateway": ("/api/v1/research/projects/{}", "/api/v1/manager/users/{}", "/api/v1/auth/token",
                "/api/v1/billing/invoices/{}", "/api/v2/search?page={}", "/ws/stream/{}"),
    "research": ("/projects/{}/search", "/experiments/{}", "/documents/{}/upload", "/index/{}"),
    "manager": ("/users/{}", "/grants/{}", "/teams/{}/members", "/jobs/{}"),
    "auth": ("/oauth/token", "/login", "/logout", "/sessions/{}"),
    "billing": ("/invoices/{}", "/payments/{}", "/accounts/{}/ledger", "/pg/v1/approve"),
    "notification": ("/notify/{}", "/templates/{}"),
}
_TARGETS = {"gateway": ("research", "manager", "auth", "billing"), "research": ("manager",),
            "manager": ("auth", "notification"), "auth": ("ldap",),
            "billing": ("payment-gateway", "notification"), "notification": ("smtp", "kakao-api")}
_QUERIES = ("anomaly detection", "transformer log parsing", "딥러닝 논문", "grant report 2024",
            "연구 과제 목록", "kubernetes autoscaling", "protein folding", "예산 집행 현황")
_FILES = ("report_q1.pdf", "dataset.csv", "보고서_2025.pdf", "slides.pptx", "실험결과.xlsx")
_STICKY = {
    "user": lambda r: (r.choice(_KO_USERS) if r.random() < 0.12
                       else f"{r.choice(_USERS)}{r.randint(1, 999)}"),
    "job": lambda r: f"job-{r.randint(10000, 99999)}",
    "exp": lambda r: f"exp-{r.getrandbits(24):06x}",
    "file": lambda r: r.choice(_FILES),
    "doc": lambda r: f"doc-{r.randint(1, 10**6)}",
    "invoice": lambda r: f"INV-{r.randint(1, 99999):05d}",
    "payment": lambda r: f"pi_{r.getrandbits(48):012x}",
    "account": lambda r: f"acct-{r.randint(100, 9999)}",
    "record": lambda r: f"{r.choice(('project', 'user', 'grant', 'team'))}/{r.randint(1, 50000)}",
    "lock": lambda r: f"lock:{r.choice(('batch', 'ledger', 'index'))}:{r.randint(1, 64)}",
    "sess": lambda r: f"sess-{r.getrandbits(40):010x}",
    "dataset": lambda r: r.choice(("kospi_daily", "papers_2024", "센서_데이터", "clickstream_v3")),
    "tmpl": lambda r: r.choice(("welcome", "invoice_ready", "password_reset", "주간_리포트")),
    "client": lambda r: f"client-{r.randint(1, 400)}",
    "origin": lambda r: r.choice(("https://app.example.com", "https://research.example.kr")),
    "route": lambda r: r.choice(("research-api", "manager-api", "auth-api", "billing-api")),
    "channel": lambda r: r.choice(("email", "sms", "push", "kakao")),
    "resource": lambda r: r.choice(("grant", "project", "team", "budget")),
    "coupon": lambda r: f"WELCOME{r.randint(5, 30)}",
    "q": lambda r: r.choice(_QUERIES),
    "fieldname": lambda r: r.choice(("email", "phone", "department", "부서")),
}
_FRESH = {
    "method": lambda r: r.choice(("GET", "GET", "GET", "POST", "PUT", "DELETE")),
    "ip": lambda r: f"10.{r.randint(0, 31)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
    "ms": lambda r: str(int(8 * math.exp(r.gauss(0, 1.0))) + 1),
    "slow_ms": lambda r: str(r.randint(1200, 9000)),
    "rows": lambda r: str(int(20 * math.exp(r.gauss(0, 1.5)))),
    "n": lambda r: str(r.randint(1, 50)),
    "n_high": lambda r: str(r.randint(900, 999)),
    "bytes": lambda r: str(int(2048 * math.exp(r.gauss(0, 1.2)))),
    "sec": lambda r: str(r.randint(1, 3600)),
    "loss": lambda r: f"{r.uniform(0.05, 2.5):.4f}",
    "pct": lambda r: str(r.randint(90, 99)),
    "shard": lambda r: str(r.randint(0, 15)),
    "key": lambda r: f"{r.choice(('user', 'project', 'token', 'search'))}:{r.randint(1, 9999)}",
    "table": lambda r: r.choice(("users", "projects", "grants", "invoices", "audit_log")),
    "amount": lambda r: f"{r.randint(1, 5000) * 100:,}",
    "ttl": lambda r: r.choice(("900", "3600", "86400")),
    "task": lambda r: f"task-{r.randint(1, 99999)}",
    "decline": lambda r: r.choice(("insufficient funds", "card expired", "한도 초과")),
    "reason": lambda r: r.choice(("not found", "forbidden", "validation failed", "conflict")),
    "exc": lambda r: r.choice(("UpstreamTimeout", "ServiceUnavailable", "BadGateway")),
    "cls": lambda r: r.choice(("OrderService", "GrantMapper", "SessionCache", "LedgerWriter")),
    "func": lambda r: r.choice(("apply", "lookup", "flush", "merge")),
    "line": lambda r: str(r.randint(20, 900)),
    "state_a": lambda r: r.choice(("PENDING", "APPROVED", "CLOSED")),
    "state_b": lambda r: r.choice(("DRAFT", "PENDING", "ARCHIVED")),
    "msgid": lambda r: f"msg-{r.getrandbits(32):08x}",
    "cfg": lambda r: r.choice(("db.pool.max", "feature.newSearch", "auth.ttl")),
    "inst": lambda r: f"{r.choice(('a', 'b', 'c'))}{r.randint(1, 6)}",
}


class _Fields:
    """Fills one session's ``{field}`` slots; ids, users and counters stay consistent."""

    def __init__(self, rng: random.Random, service: str):
        self.rng, self.service = rng, service
        self.ctx: dict[str, str] = {"status": rng.choices(("200", "201", "204"), (8, 1, 1))[0]}
        self.counters: Counter = Counter()

    def __getitem__(self, name: str) -> str:
        r, ctx = self.rng, self.ctx
        if name in _FRESH:
            return _FRESH[name](r)
        if name in _STICKY:
            if name not in ctx:
                ctx[name] = _STICKY[name](r)
            return ctx[name]
        if name.endswith("_next"):                  # i_next / page_next / attempt_next
            self.counters[name[:-5]] += 1
            return str(self.counters[name[:-5]])
        if name in ("i", "attempt"):
            return str(self.counters[name])
        if name in ("code4", "code5"):
            ctx["status"] = r.choice(("400", "403", "404", "409") if name == "code4"
                                     else ("500", "502", "503", "504"))
            return ctx["status"]
        if name == "target":
            if "target" not in ctx:
                ctx["target"] = r.choice(_TARGETS[self.service])
            return ctx["target"]
        if name == "path":
            return r.choice(_PATHS[self.service]).format(r.randint(1, 99999))
        if name == "rid":
            return ctx.setdefault("rid", f"{r.getrandbits(64):016x}")
        return ctx.get(name, "-")


def _render(rng: random.Random, day: str, start_ms: int, service: str, keys: list[str]
            ) -> tuple[list[str], bool, bool]:
    """Raw log lines for one session, and whether it logged an ERROR / a WARN."""
    fields = _Fields(rng, service)
    trace = fields["rid"]
    lines, levels = [], set()
    t = start_ms
    for key in keys:
        template = TEMPLATES[key]
        t += int(3 * math.exp(rng.gauss(0, 1.3)))
        sec, ms = divmod(min(t, 86_399_999), 1000)
        levels.add(template.level)
        lines.append(f"{day} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}.{ms:03d} "
                     f"{template.level:<5} [{service},{trace}] "
                     f"{template.text.format_map(fields)}")
    return lines, "ERROR" in levels, "WARN" in levels


# --- writing day files -------------------------------------------------------------------

@dataclass
class SynthSummary:
    """What :func:`generate` wrote, with the ground-truth counts."""
    out_dir: Path
    files: list[Path]
    labels_path: Path
    templates_path: Path
    n_sessions: int = 0
    n_anomalies: int = 0
    n_has_error: int = 0
    n_has_warn: int = 0
    n_over_max_len: int = 0           # sessions whose token_ids were cut to max_len
    max_events: int = 0
    kinds: Counter = field(default_factory=Counter)
    services: Counter = field(default_factory=Counter)

    def to_dict(self) -> dict:
        return {"out_dir": str(self.out_dir), "files": [str(f) for f in self.files],
                "labels_path": str(self.labels_path), "templates_path": str(self.templates_path),
                "n_sessions": self.n_sessions, "n_anomalies": self.n_anomalies,
                "n_has_error": self.n_has_error, "n_has_warn": self.n_has_warn,
                "n_over_max_len": self.n_over_max_len, "max_events": self.max_events,
                "kinds": dict(self.kinds), "services": dict(self.services)}


@dataclass
class _Session:
    start_ms: int
    service: str
    keys: list[str]
    kind: str           # "" for normal sessions


def _start_ms(rng: random.Random) -> int:
    """Most traffic in working hours (KST), a floor of background jobs around the clock."""
    hours = rng.gauss(14, 3) if rng.random() < 0.7 else rng.uniform(0, 24)
    return int(min(23.5, max(0.0, hours)) * 3_600_000) + rng.randint(0, 999)


def _day_sessions(model: SystemModel, rng: random.Random, n: int, anomaly_rate: float
                  ) -> list[_Session]:
    sessions = []
    for _ in range(n):
        service = rng.choices(model.services, model.service_weights)[0]
        events = model.normal_session(rng, service)
        keys, kind = [key for key, _ in events], ""
        if rng.random() < anomaly_rate:
            for candidate in rng.sample(ANOMALY_KINDS, len(ANOMALY_KINDS)):
                injected = _inject(candidate, rng, events, service, model)
                if injected is not None:
                    keys, kind = injected, candidate
                    break
        sessions.append(_Session(_start_ms(rng), service, keys, kind))
    sessions.sort(key=lambda s: s.start_ms)
    return sessions


def _record(session_id: int, events: list[int], width: int, max_len: int, has_error: bool,
            has_warn: bool, service: str, lines: list[str]) -> dict:
    tokens = [CLS_TOKEN, *events[:max_len - 2], SEP_TOKEN]
    pad = width - len(tokens)
    return {"session_id": session_id, "event_sequence": events,
            "token_ids": tokens + [PAD_TOKEN] * pad,
            "attention_mask": [1] * len(tokens) + [0] * pad,
            "has_error": has_error, "has_warn": has_warn, "service_name": service,
            "original_logs": lines}


def _write_day(path: Path, sessions: list[_Session], rng: random.Random, day: dt.date,
               max_len: int, padded: bool, summary: SynthSummary, labels: list) -> None:
    width = max_len if padded else min(max_len, max(len(s.keys) for s in sessions) + 2)
    with atomic_write(path, "wb") as handle:
        # Byte-identical to json.dump(list_of_sessions, f, ensure_ascii=False), one
        # session at a time so memory stays flat.
        writer = DayFileWriter(handle, style="json_dump")
        for sid, session in enumerate(sessions):
            lines, has_error, has_warn = _render(rng, day.isoformat(), session.start_ms,
                                                 session.service, session.keys)
            events = [TEMPLATES[key].id for key in session.keys]
            record = _record(sid, events, width, max_len, has_error, has_warn,
                             session.service, lines)
            writer.write(record)
            labels.append((path.name, sid, int(bool(session.kind)), session.kind))
            summary.n_sessions += 1
            summary.n_anomalies += bool(session.kind)
            summary.n_has_error += has_error
            summary.n_has_warn += has_warn
            summary.n_over_max_len += len(events) + 2 > max_len
            summary.max_events = max(summary.max_events, len(events))
            summary.kinds[session.kind or "normal"] += 1
            summary.services[session.service] += 1
        writer.close()


def _release(sessions: list[_Session], rng: random.Random, share: float) -> None:
    """A release at midday: from then on, sessions log the new line (RELEASE_KEY) at a
    random place, as many as ``share`` of the whole day; their labels do not change."""
    later = [s for s in sessions if s.start_ms >= 12 * 3_600_000]
    for session in rng.sample(later, min(len(later), round(share * len(sessions)))):
        session.keys.insert(rng.randint(0, len(session.keys)), RELEASE_KEY)


def generate(out_dir: str | Path, *, days: int = 3, sessions: int = 2000,
             anomaly_rate: float = 0.05, seed: int = 0, start_date: str = "2025-02-24",
             max_len: int = 512, padded: bool = True, drift: float = 0.0,
             release: float = 0.0) -> SynthSummary:
    """Write ``days`` day files of ``sessions`` sessions each, plus labels and templates.

    The same arguments give byte-identical files. ``padded`` pads every ``token_ids`` to
    ``max_len``; otherwise each file pads to its own longest session (capped at
    ``max_len``). ``event_sequence`` is never cut; ``token_ids`` keep the first
    ``max_len - 2`` events between CLS (101) and SEP (102). ``drift`` > 0 moves the
    system a step every day after the first (:meth:`SystemModel.drifted`, a random walk
    from its own seed); 0 leaves every day the same system. ``release`` > 0 ships a new
    benign log line on the last day at midday: that share of the day's sessions log it
    (their labels unchanged); the other days are the same bytes as without it.
    """
    if days < 1 or sessions < 1:
        raise RadarError(f"days and sessions must be at least 1 (got {days}, {sessions})")
    if not 0.0 <= anomaly_rate <= 1.0:
        raise RadarError(f"anomaly rate must lie in [0, 1], got {anomaly_rate}")
    if drift < 0:
        raise RadarError(f"drift must be 0 or more, got {drift}")
    if not 0.0 <= release <= 0.5:
        raise RadarError(f"release must lie in [0, 0.5] (a share of the last day's "
                         f"sessions, all after midday), got {release}")
    if max_len < 3:
        raise RadarError(f"max_len must be at least 3 (CLS, one event, SEP), got {max_len}")
    try:
        first = dt.date.fromisoformat(start_date)
    except ValueError:
        raise RadarError(f"start date {start_date!r} is not YYYY-MM-DD") from None
    out = Path(out_dir)
    model = SystemModel.build(random.Random(f"radar-synth-model:{seed}"))
    summary = SynthSummary(out, [], out / LABELS_NAME, out / "templates.tsv")
    labels: list[tuple] = []
    for offset in range(days):
        day = first + dt.timedelta(days=offset)
        if drift > 0 and offset:
            model = model.drifted(random.Random(f"radar-synth-drift:{seed}:{day}"), drift)
        rng = random.Random(f"radar-synth:{seed}:{day.isoformat()}")
        day_sessions = _day_sessions(model, rng, sessions, anomaly_rate)
        if release > 0 and offset == days - 1:
            _release(day_sessions, random.Random(f"radar-synth-release:{seed}"), release)
        path = out / day_file_name(day)
        _write_day(path, day_sessions, rng, day, max_len, padded, summary, labels)
        summary.files.append(path)
    write_labels(summary.labels_path, labels, extra_columns=("anomaly_kind",))
    _write_templates(summary.templates_path, release > 0)
    return summary


def _write_templates(path: Path, release: bool = False) -> None:
    # Anomaly-only templates are listed as "shared": a log parser cannot know them apart.
    rows = ["event_id\tservice\ttemplate"] + [
        f"{t.id}\t{'shared' if t.service == 'anomaly' else t.service}\t{t.pattern}"
        for t in sorted(TEMPLATES.values(), key=lambda t: t.id)
        if release or t.key != RELEASE_KEY]
    atomic_write_text(path, "\n".join(rows) + "\n")


def read_ground_truth(path: str | Path) -> dict[tuple[str, int], tuple[int, str]]:
    """``labels.csv`` as ``{(file name, session_id): (label, anomaly_kind)}``."""
    with open(path, newline="", encoding="utf-8") as handle:
        return {(row["file"], int(row["session_id"])): (int(row["label"]), row["anomaly_kind"])
                for row in csv.DictReader(handle)}
