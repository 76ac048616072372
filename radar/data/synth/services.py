"""The six services and their workflows, and :class:`SystemModel`, one seed's system.

:func:`_service_table` writes each service's request workflows in the grammar of
:mod:`radar.data.synth.grammar`; :class:`SystemModel` jitters it for a seed, drifts it
from day to day and draws normal sessions from it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from radar.data.synth.grammar import Alt, Count, Ev, Node, Opt, Par, Rep, Seq, walk_step
from radar.data.synth.templates import NOISE_KEYS, TEMPLATES


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
        weights = [w * walk_step(rng, sigma) for w in self.service_weights]
        workflows = {s: ([w * walk_step(rng, sigma) for w in shares],
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
                out.insert(rng.randint(1, len(out)), (rng.choice(NOISE_KEYS), False))
        return out
