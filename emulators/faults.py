"""Trouble on demand for the Key Vault listeners: injected faults, added latency, throttling, and request counters.

The app must survive what Azure does under load or during incidents (429 with and without Retry-After, 5xx,
dropped connections, slow answers), so tests switch these on through the admin API and watch the counters.
Faults and throttling apply only to requests that carry an Authorization header: the SDK's bodiless challenge
request then always gets its 401, and an injected fault lands on a real operation. Throttling follows Key Vault's
published limits per vault per 10 seconds by key type, size and operation class; throttled calls do not consume.
"""

from __future__ import annotations

import asyncio
import math
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from emulators.core import azure_error

FAULT_KINDS = ("429", "429-no-retry-after", "500", "503", "reset")
WINDOW_SECONDS = 10.0
# (HSM?, key size) -> (create limit, other-operations limit) per vault per 10 s.
REAL_LIMITS: dict[tuple[bool, int], tuple[int, int]] = {
    (True, 2048): (10, 2000),
    (True, 3072): (10, 500),
    (True, 4096): (10, 250),
    (False, 2048): (20, 4000),
    (False, 3072): (20, 1000),
    (False, 4096): (20, 500),
}
CREATE_OPERATIONS = frozenset({"createkey", "rotatekey"})
THROTTLED_MESSAGE = (
    "Request was not processed because too many requests were received. Reason: A generic vault operation limit "
    "was reached."
)


class SpecError(ValueError):
    """A bad admin request; the message names the field."""


def _optional_str(spec: dict[str, Any], name: str) -> str | None:
    value = spec.get(name)
    if value is not None and (not isinstance(value, str) or not value):
        raise SpecError(f"{name}: expected a non-empty string, got {value!r}")
    return value.lower() if value else None


@dataclass
class FaultRule:
    kind: str
    operation: str | None = None
    vault: str | None = None
    rate: float | None = None
    remaining: int | None = None
    retry_after: int = 1
    hits: int = 0

    def matches(self, vault: str, operation: str) -> bool:
        return (self.vault in (None, vault.lower())) and (self.operation in (None, operation.lower()))

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "operation": self.operation,
            "vault": self.vault,
            "rate": self.rate,
            "remaining": self.remaining,
            "retry_after": self.retry_after,
            "hits": self.hits,
        }


def parse_fault(spec: Any) -> FaultRule:
    if not isinstance(spec, dict):
        raise SpecError("body: expected a JSON object")
    kind = str(spec.get("kind", ""))
    if kind not in FAULT_KINDS:
        raise SpecError(f"kind: expected one of {', '.join(FAULT_KINDS)}, got {spec.get('kind')!r}")
    rate, count = spec.get("rate"), spec.get("count")
    if rate is not None and count is not None:
        raise SpecError("rate, count: give one of them, not both")
    if rate is not None and (not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1):
        raise SpecError(f"rate: expected a number from 0 to 1, got {rate!r}")
    if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count < 1):
        raise SpecError(f"count: expected a positive integer, got {count!r}")
    retry_after = spec.get("retry_after", 1)
    if not isinstance(retry_after, int) or isinstance(retry_after, bool) or retry_after < 0:
        raise SpecError(f"retry_after: expected a non-negative integer (seconds), got {retry_after!r}")
    return FaultRule(
        kind=kind,
        operation=_optional_str(spec, "operation"),
        vault=_optional_str(spec, "vault"),
        rate=float(rate) if rate is not None else (None if count is not None else 1.0),
        remaining=count,
        retry_after=retry_after,
    )


@dataclass
class Bucket:
    capacity: float
    per_seconds: float
    tokens: float
    stamp: float

    def take(self, now: float) -> float | None:
        """Consume one token; None when granted, else seconds until one is available (nothing consumed)."""
        rate = self.capacity / self.per_seconds
        self.tokens = min(self.capacity, self.tokens + (now - self.stamp) * rate)
        self.stamp = now
        if self.tokens >= 1:
            self.tokens -= 1
            return None
        return (1 - self.tokens) / rate


@dataclass
class ThrottleSettings:
    mode: str = "real"  # "real" | "off" | "custom"
    capacity: int = 0
    per_seconds: float = WINDOW_SECONDS

    def to_json(self) -> dict[str, Any]:
        if self.mode == "custom":
            return {"mode": "custom", "capacity": self.capacity, "per_seconds": self.per_seconds}
        return {"mode": self.mode}


def parse_throttle(spec: Any) -> ThrottleSettings:
    if not isinstance(spec, dict):
        raise SpecError("body: expected a JSON object")
    if "mode" in spec and spec["mode"] in ("real", "off"):
        return ThrottleSettings(mode=spec["mode"])
    if "mode" in spec and spec["mode"] != "custom":
        raise SpecError(f"mode: expected 'real' or 'off' (or give capacity and per_seconds), got {spec['mode']!r}")
    capacity, per = spec.get("capacity"), spec.get("per_seconds", WINDOW_SECONDS)
    if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity < 1:
        raise SpecError(f"capacity: expected a positive integer, got {capacity!r}")
    if not isinstance(per, int | float) or isinstance(per, bool) or per <= 0:
        raise SpecError(f"per_seconds: expected a positive number, got {per!r}")
    return ThrottleSettings(mode="custom", capacity=capacity, per_seconds=float(per))


@dataclass
class LatencyRule:
    ms: float
    operation: str | None = None
    vault: str | None = None


def parse_latency(spec: Any) -> LatencyRule:
    if not isinstance(spec, dict):
        raise SpecError("body: expected a JSON object")
    ms = spec.get("ms")
    if not isinstance(ms, int | float) or isinstance(ms, bool) or ms < 0 or ms > 120_000:
        raise SpecError(f"ms: expected a number of milliseconds from 0 to 120000, got {ms!r}")
    return LatencyRule(float(ms), _optional_str(spec, "operation"), _optional_str(spec, "vault"))


@dataclass
class OperationCount:
    requests: int = 0
    by_status: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    delayed: int = 0  # calls held back by an added latency, so a test reads the targeting rather than a stopwatch


class FaultInjector:
    """The shared trouble settings for every vault listener, plus the counters the tests read back."""

    def __init__(self, throttle: ThrottleSettings | None = None) -> None:
        self.default_throttle = throttle or ThrottleSettings()
        self.reset()

    def reset(self) -> None:
        self.faults: list[FaultRule] = []
        self.latencies: dict[tuple[str | None, str | None], LatencyRule] = {}
        self.throttle = ThrottleSettings(**vars(self.default_throttle))
        self.buckets: dict[tuple[Any, ...], Bucket] = {}
        self.counters: dict[str, dict[str, OperationCount]] = defaultdict(lambda: defaultdict(OperationCount))

    # ---- admin side -----------------------------------------------------------------------------------------
    def add_fault(self, rule: FaultRule) -> None:
        self.faults.append(rule)

    def clear_faults(self) -> None:
        self.faults.clear()

    def set_latency(self, rule: LatencyRule) -> None:
        key = (rule.vault, rule.operation)
        if rule.ms == 0:
            self.latencies.pop(key, None)
        else:
            self.latencies[key] = rule

    def set_throttle(self, settings: ThrottleSettings) -> None:
        self.throttle = settings
        self.buckets.clear()

    def counters_json(self) -> dict[str, Any]:
        return {
            vault: {
                op: {"requests": c.requests, "by_status": dict(c.by_status), "delayed": c.delayed}
                for op, c in ops.items()
            }
            for vault, ops in self.counters.items()
        }

    # ---- request side ---------------------------------------------------------------------------------------
    def pick_fault(self, vault: str, operation: str) -> FaultRule | None:
        for rule in self.faults:
            if not rule.matches(vault, operation):
                continue
            if rule.remaining is not None:
                rule.remaining -= 1
                if rule.remaining <= 0:
                    self.faults.remove(rule)
            elif rule.rate is not None and random.random() >= rule.rate:
                continue
            rule.hits += 1
            return rule
        return None

    def latency_seconds(self, vault: str, operation: str) -> float:
        v, op = vault.lower(), operation.lower()
        for key in ((v, op), (None, op), (v, None), (None, None)):
            rule = self.latencies.get(key)
            if rule:
                return rule.ms / 1000
        return 0.0

    def throttle_wait(self, vault: str, operation: str, hsm: bool, key_size: int) -> float | None:
        """None when the call may proceed; else seconds until it could (the call is refused, consumes nothing)."""
        settings = self.throttle
        if settings.mode == "off":
            return None
        now = time.monotonic()
        if settings.mode == "custom":
            bucket_key: tuple[Any, ...] = (vault,)
            capacity, per = float(settings.capacity), settings.per_seconds
        else:
            kind = "create" if operation in CREATE_OPERATIONS else "other"
            limits = REAL_LIMITS.get((hsm, key_size), REAL_LIMITS[(hsm, 2048)])
            capacity, per = float(limits[0] if kind == "create" else limits[1]), WINDOW_SECONDS
            bucket_key = (vault, hsm, key_size, kind)
        bucket = self.buckets.get(bucket_key)
        if bucket is None:
            bucket = self.buckets[bucket_key] = Bucket(capacity, per, capacity, now)
        return bucket.take(now)

    def count(self, vault: str, operation: str, status: str) -> None:
        counter = self.counters[vault][operation]
        counter.requests += 1
        counter.by_status[status] += 1


Classifier = Callable[[web.Request], tuple[str, str | None]]  # request -> (operation, key name)
# (request, operation, key name) -> (HSM?, key size) of the key the call is about, for the throttling class
KeyClass = Callable[[web.Request, str, str | None], Awaitable[tuple[bool, int]]]


def fault_middleware(injector: FaultInjector, vault: str, classify: Classifier, key_class: KeyClass) -> Any:
    """aiohttp middleware for one vault listener: count, then (for authenticated calls) fault, delay, throttle."""

    @web.middleware
    async def middleware(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]):
        operation, key_name = classify(request)
        status = "error"
        try:
            if request.headers.get("Authorization"):
                delay = injector.latency_seconds(vault, operation)
                if delay:
                    injector.counters[vault][operation].delayed += 1
                    await asyncio.sleep(delay)
                rule = injector.pick_fault(vault, operation)
                if rule is not None:
                    status = "reset" if rule.kind == "reset" else rule.kind[:3]
                    return _fault_response(request, rule)
                hsm, size = await key_class(request, operation, key_name)
                wait = injector.throttle_wait(vault, operation, hsm, size)
                if wait is not None:
                    status = "429"
                    return azure_error(
                        429, "Throttled", THROTTLED_MESSAGE, headers={"Retry-After": str(max(1, math.ceil(wait)))}
                    )
            response = await handler(request)
            status = str(response.status)
            return response
        except web.HTTPException as exc:
            status = str(exc.status)
            raise
        finally:
            injector.count(vault, operation, status)

    return middleware


def _fault_response(request: web.Request, rule: FaultRule) -> web.StreamResponse:
    if rule.kind == "reset":
        # Abort drops the TCP connection without an answer; aiohttp then finds the transport closed and sends
        # nothing (the response below is never written).
        if request.transport is not None:
            request.transport.abort()
        return web.Response(status=500)
    if rule.kind == "429":
        return azure_error(429, "Throttled", THROTTLED_MESSAGE, headers={"Retry-After": str(rule.retry_after)})
    if rule.kind == "429-no-retry-after":
        return azure_error(429, "Throttled", THROTTLED_MESSAGE)
    if rule.kind == "500":
        return azure_error(500, "InternalServerError", "fault injection: internal server error")
    return azure_error(503, "ServiceUnavailable", "fault injection: service unavailable")
