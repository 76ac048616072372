"""The template table: every log line the synthetic services can write.

One row per template: a key (how the grammar names it), the service that logs it
("shared": any service; "anomaly": never in a normal session), a level and a text whose
``{field}`` slots :mod:`radar.data.synth.render` fills per line. Each template also has
the numeric event id a log parser would give it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

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


# Background lines (heartbeats, metrics, GC) that imperfect grouping mixes into sessions.
NOISE_KEYS = [key for key in TEMPLATES if key.startswith("bg_")]
