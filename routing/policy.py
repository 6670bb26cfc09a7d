"""Request-body policy engine (pure, stdlib only).

A policy is a sequence of ``Rule``s applied to a parsed JSON request body by ``apply_policy``.

* A rule applies only if ``rule.endpoint`` is "any" or the request's endpoint, and ``rule.stream`` is
  "any" or matches the request ("stream" / "non_stream").
* Phases run in a fixed order whatever the list order: reject -> allow_only -> drop -> rename -> set
  -> default; within a phase, rules run in list order.
* Paths are dotted dict paths ("a.b"); a path through a non-dict (e.g. a list) is "not present".
* reject: if the path is present, raise ``PolicyRejected(param, message)``.
* allow_only: drop every top-level key not listed ("model" and "stream" are always kept).
* drop: remove the path if present; parents emptied by the removal are removed too
  (audited with ``"reason": "empty_parent"``).
* rename: move the value to the target path (creating parent dicts, overwriting any value there),
  then remove the source like drop does. Skipped if a target parent exists and is not a dict.
* set: write the value (creating parent dicts) unless an equal value of the same type is there.
* default: like set, but only if the path is absent.
  set/default are skipped if a parent on the path exists and is not a dict.

``strip_encrypted_reasoning`` is the one rewrite that is not an ops rule: encrypted reasoning
items (Codex's ``store: false`` turns) can only be decrypted by the resource that produced them;
when a deployment refuses them, the call is retried there once without them. It lives here so
that every body change is made, and reported, by this module.

Every change is recorded in ``PolicyResult.changes`` (audit entries, each naming its "policy").
The input is never mutated: dicts are shallow-copied along the modified paths only (copy-on-write),
inserted values are deep-copied. If nothing changed, ``result.body is body``.
"""
from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

ACTIONS = ("reject", "allow_only", "drop", "rename", "set", "default")  # also the phase order
ENDPOINTS = ("any", "responses", "chat", "compact")
STREAM_MODES = ("any", "stream", "non_stream")
ALWAYS_ALLOWED = frozenset({"model", "stream"})

_PHASE = {action: index for index, action in enumerate(ACTIONS)}
_MISSING = object()


@dataclass(frozen=True, slots=True)
class Rule:
    action: str
    path: tuple[str, ...]  # for allow_only: the allowed top-level keys
    value: Any = None
    target: tuple[str, ...] = ()
    endpoint: str = "any"
    stream: str = "any"
    message: str = ""
    source: str = ""


class PolicyRejected(Exception):
    def __init__(self, param: str, message: str):
        super().__init__(message)
        self.param = param
        self.message = message


@dataclass(frozen=True, slots=True)
class PolicyResult:
    body: dict
    changes: list[dict]


def _split(text: str, separator: str, what: str) -> tuple[str, ...]:
    if not text.strip():
        raise ValueError(f"Empty {what}.")
    parts = [part.strip() for part in text.split(separator)] if separator == "," else text.strip().split(".")
    if not all(parts):
        raise ValueError(f"Empty segment in {what} {text!r}.")
    return tuple(parts)


def compile_rule(action: str, path: str, *, value: Any = None, target: str = "", endpoint: str = "any",
                 stream: str = "any", message: str = "", source: str = "") -> Rule:
    if action not in _PHASE:
        raise ValueError(f"Unknown policy action {action!r}.")
    if endpoint not in ENDPOINTS:
        raise ValueError(f"Unknown endpoint {endpoint!r}.")
    if stream not in STREAM_MODES:
        raise ValueError(f"Unknown stream condition {stream!r}.")
    if action == "allow_only":
        parsed = _split(path, ",", "key list")
    else:
        parsed = _split(path, ".", "path")
    parsed_target: tuple[str, ...] = ()
    if action == "rename":
        if not target.strip():
            raise ValueError("rename needs a target path.")
        parsed_target = _split(target, ".", "target path")
    return Rule(action, parsed, copy.deepcopy(value), parsed_target, endpoint, stream, message, source)


def _lookup(body: Any, path: tuple[str, ...]) -> Any:
    node = body
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return _MISSING
        node = node[key]
    return node


def _blocked(body: dict, path: tuple[str, ...], vanishing: tuple[str, ...] = ()) -> bool:
    """True if a parent of ``path`` exists and is not a dict (parents under ``vanishing`` don't count)."""
    node: Any = body
    for depth, key in enumerate(path[:-1], start=1):
        if vanishing and path[:len(vanishing)] == vanishing and depth >= len(vanishing):
            return False
        node = node.get(key, _MISSING)
        if node is _MISSING:
            return False
        if not isinstance(node, dict):
            return True
    return False


def _same(a: Any, b: Any) -> bool:
    """Deep equality that also requires equal types (True != 1, 1 != 1.0)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(a[key], b[key]) for key in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


class _Editor:
    """Copy-on-write editing of a body: each dict is shallow-copied the first time it is written to."""

    def __init__(self, body: dict):
        self.root = body
        self.changes: list[dict] = []
        self._owned: dict[int, dict] = {}  # id -> dict created by us (kept alive so ids stay unique)

    def _own(self, node: Any) -> dict:
        if isinstance(node, dict) and id(node) in self._owned:
            return node
        fresh = dict(node) if isinstance(node, dict) else {}
        self._owned[id(fresh)] = fresh
        return fresh

    def _writable(self, keys: tuple[str, ...]) -> list[dict]:
        """Writable dicts for the root and each key below it, creating missing ones."""
        self.root = node = self._own(self.root)
        chain = [node]
        for key in keys:
            node[key] = node = self._own(node.get(key))
            chain.append(node)
        return chain

    def assign(self, path: tuple[str, ...], value: Any) -> None:
        self._writable(path[:-1])[-1][path[-1]] = value

    def remove(self, path: tuple[str, ...], policy: str, keep: tuple[str, ...] = ()) -> None:
        """Delete an existing path, then every parent this leaves empty (except prefixes of ``keep``)."""
        chain = self._writable(path[:-1])
        del chain[-1][path[-1]]
        for depth in range(len(path) - 1, 0, -1):
            if chain[depth] or keep[:depth] == path[:depth]:
                break
            del chain[depth - 1][path[depth - 1]]
            self.changes.append({"action": "drop", "path": ".".join(path[:depth]), "policy": policy,
                                 "reason": "empty_parent"})


def _applies(rule: Rule, endpoint: str, stream: bool) -> bool:
    return (rule.endpoint in ("any", endpoint)
            and rule.stream in ("any", "stream" if stream else "non_stream"))


def apply_policy(body: dict, rules: Sequence[Rule], *, endpoint: str, stream: bool) -> PolicyResult:
    active = sorted((rule for rule in rules if _applies(rule, endpoint, stream)), key=lambda r: _PHASE[r.action])
    if not active:
        return PolicyResult(body=body, changes=[])
    editor = _Editor(body)
    for rule in active:
        path, dotted, policy = rule.path, ".".join(rule.path), rule.source
        if rule.action == "reject":
            if _lookup(editor.root, path) is not _MISSING:
                raise PolicyRejected(dotted, rule.message or f"Parameter '{dotted}' is not allowed on this route.")
        elif rule.action == "allow_only":
            for key in [k for k in editor.root if k not in path and k not in ALWAYS_ALLOWED]:
                editor.remove((key,), policy)
                editor.changes.append({"action": "drop", "path": key, "policy": policy, "rule": "allow_only"})
        elif rule.action == "drop":
            if _lookup(editor.root, path) is not _MISSING:
                editor.changes.append({"action": "drop", "path": dotted, "policy": policy})
                editor.remove(path, policy)
        elif rule.action == "rename":
            value = _lookup(editor.root, path)
            if value is _MISSING or rule.target == path or _blocked(editor.root, rule.target, vanishing=path):
                continue
            editor.changes.append({"action": "rename", "path": dotted, "to": ".".join(rule.target),
                                   "policy": policy})
            editor.remove(path, policy, keep=rule.target)
            editor.assign(rule.target, value)
        elif rule.action in ("set", "default"):
            current = _lookup(editor.root, path)
            if rule.action == "default" and current is not _MISSING:
                continue
            if (current is not _MISSING and _same(current, rule.value)) or _blocked(editor.root, path):
                continue
            editor.assign(path, copy.deepcopy(rule.value))
            editor.changes.append({"action": rule.action, "path": dotted, "value": copy.deepcopy(rule.value),
                                   "policy": policy})
    if not editor.changes:
        return PolicyResult(body=body, changes=[])
    return PolicyResult(body=editor.root, changes=editor.changes)


def _encrypted_reasoning(item: Any) -> bool:
    return isinstance(item, dict) and item.get("type") == "reasoning" and bool(item.get("encrypted_content"))


def strip_encrypted_reasoning(body: dict) -> PolicyResult:
    """Remove the encrypted reasoning items from ``input`` (audited as one drop with a count)."""
    items = body.get("input")
    if not isinstance(items, list):
        return PolicyResult(body=body, changes=[])
    kept = [item for item in items if not _encrypted_reasoning(item)]
    if len(kept) == len(items):
        return PolicyResult(body=body, changes=[])
    return PolicyResult(body=dict(body, input=kept), changes=[{
        "action": "drop", "path": "input[type=reasoning].encrypted_content", "count": len(items) - len(kept),
        "reason": "reasoning_not_decryptable_by_deployment"}])
