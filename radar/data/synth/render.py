"""Rendering: a session's template keys as raw log lines, and the record a day file holds.

Field values (users, ids, paths, latencies) are drawn per session; ids and users stay
the same within one session, as in real traces.
"""

from __future__ import annotations

import math
import random
from collections import Counter

from radar.data.records import CLS_TOKEN, PAD_TOKEN, SEP_TOKEN
from radar.data.synth.templates import TEMPLATES

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


def render_lines(rng: random.Random, day: str, start_ms: int, service: str,
                 keys: list[str]) -> tuple[list[str], bool, bool]:
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


def session_record(session_id: int, events: list[int], width: int, max_len: int,
                   has_error: bool, has_warn: bool, service: str, lines: list[str]) -> dict:
    """One day-file record: ``token_ids`` (CLS, the first ``max_len - 2`` events, SEP)
    padded to ``width``, its ``attention_mask``, and the full ``event_sequence``."""
    tokens = [CLS_TOKEN, *events[:max_len - 2], SEP_TOKEN]
    pad = width - len(tokens)
    return {"session_id": session_id, "event_sequence": events,
            "token_ids": tokens + [PAD_TOKEN] * pad,
            "attention_mask": [1] * len(tokens) + [0] * pad,
            "has_error": has_error, "has_warn": has_warn, "service_name": service,
            "original_logs": lines}
