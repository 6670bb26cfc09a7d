"""Property tests for routing.policy: random bodies and rules, checked against invariants
and a reference implementation (pure: no Django, no database)."""
from __future__ import annotations

import copy
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from routing.policy import PolicyRejected, apply_policy, compile_rule


def run(body, *rules, endpoint="responses", stream=False):
    return apply_policy(body, list(rules), endpoint=endpoint, stream=stream)

KEYS = ("a", "b", "c", "model", "stream")
ENDPOINTS = ("responses", "chat", "compact")

json_scalars = st.none() | st.booleans() | st.integers(-2, 2) | st.sampled_from(["", "x", "1"])
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(KEYS), inner, max_size=4),
    max_leaves=12,
)
bodies = st.dictionaries(st.sampled_from(KEYS), json_values, max_size=5)
dotted_paths = st.lists(st.sampled_from(KEYS), min_size=1, max_size=3).map(".".join)
conditions = st.fixed_dictionaries({
    "endpoint": st.sampled_from(("any",) + ENDPOINTS),
    "stream": st.sampled_from(("any", "stream", "non_stream")),
    "source": st.sampled_from(("p", "q")),
})


@st.composite
def policy_cases(draw, actions):
    """A body plus rules whose paths/values are biased towards what the body actually contains."""
    body = draw(bodies)
    present = sorted({path[:depth] for path in leaves(body) for depth in range(1, len(path) + 1)})
    paths = dotted_paths
    values = json_values
    if present:
        paths = st.one_of(dotted_paths, st.sampled_from(present).map(".".join))
        subtrees = [_ref_get(body, path)[1] for path in present]
        values = st.one_of(json_values, st.sampled_from(subtrees).map(copy.deepcopy))
    rules = []
    for action in draw(st.lists(st.sampled_from(actions), max_size=6)):
        extra = draw(conditions)
        if action == "allow_only":
            keys = draw(st.lists(st.sampled_from(KEYS), min_size=1, max_size=3))
            rules.append(compile_rule(action, ",".join(keys), **extra))
            continue
        if action in ("set", "default"):
            extra["value"] = draw(values)
        if action == "rename":
            extra["target"] = draw(paths)
        rules.append(compile_rule(action, draw(paths), **extra))
    return body, rules


def leaves(value, prefix=()):
    """Flatten to {path: leaf}; leaves are non-dict values and empty dicts. Values are JSON-encoded so
    that equality is type-strict (True != 1)."""
    if isinstance(value, dict) and value:
        out = {}
        for key, child in value.items():
            out.update(leaves(child, prefix + (key,)))
        return out
    return {prefix: json.dumps(value, sort_keys=True)}


def audited_paths(changes):
    paths = set()
    for change in changes:
        paths.add(tuple(change["path"].split(".")))
        if "to" in change:
            paths.add(tuple(change["to"].split(".")))
    return paths


def unaudited(body, audited):
    """Leaves not equal to, under, or above any audited path."""
    def related(path, other):
        shortest = min(len(path), len(other))
        return path[:shortest] == other[:shortest]
    return {path: leaf for path, leaf in leaves(body).items() if not any(related(path, a) for a in audited)}


@settings(max_examples=400, deadline=None)
@given(case=policy_cases(("drop", "set", "default", "rename", "allow_only")),
       endpoint=st.sampled_from(ENDPOINTS), stream=st.booleans())
def test_property_only_audited_paths_change_and_input_untouched(case, endpoint, stream):
    body, rules = case
    original = copy.deepcopy(body)
    rules_before = copy.deepcopy(rules)
    result = apply_policy(body, rules, endpoint=endpoint, stream=stream)

    assert body == original and leaves(body) == leaves(original)  # (1) input not mutated
    assert rules == rules_before
    audited = audited_paths(result.changes)
    assert unaudited(result.body, audited) == unaudited(original, audited)  # (2) nothing else changed
    if not result.changes:
        assert result.body is body
    else:
        assert result.body is not body


@st.composite
def paths_in(draw, body):
    """A dotted path that exists in body (or a random one if body is empty)."""
    existing = [p for p in leaves(body) if p]
    if not existing:
        return draw(dotted_paths)
    path = draw(st.sampled_from(existing))
    return ".".join(path[: draw(st.integers(1, len(path)))])


@settings(max_examples=300, deadline=None)
@given(data=st.data(), body=bodies, endpoint=st.sampled_from(ENDPOINTS), stream=st.booleans())
def test_property_drop_of_existing_path_removes_it(data, body, endpoint, stream):
    path = data.draw(paths_in(body))
    result = run(body, compile_rule("drop", path), endpoint=endpoint, stream=stream)
    parts = path.split(".")
    node = result.body
    for key in parts[:-1]:
        node = node.get(key) if isinstance(node, dict) else None
    assert not (isinstance(node, dict) and parts[-1] in node)
    assert all(c["action"] == "drop" for c in result.changes)
    # No empty dict is left behind on the dropped path.
    for depth in range(1, len(parts)):
        node = result.body
        for key in parts[:depth]:
            node = node.get(key) if isinstance(node, dict) else None
        assert node != {} or _was_empty(body, parts[:depth])


def _was_empty(body, parts):
    node = body
    for key in parts:
        node = node.get(key) if isinstance(node, dict) else None
    return node == {}


# A straightforward reference implementation (deep copy + in-place edits) used as an oracle.

def _ref_get(body, path):
    node = body
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False, None
        node = node[key]
    return True, node


def _ref_can_create(body, path):
    node = body
    for key in path[:-1]:
        if key not in node:
            return True
        node = node[key]
        if not isinstance(node, dict):
            return False
    return True


def _ref_create(body, path, value):
    node = body
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value


def _ref_delete(body, path, source, changes, keep=()):
    parents = [body]
    for key in path[:-1]:
        parents.append(parents[-1][key])
    del parents[-1][path[-1]]
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth] or keep[:depth] == path[:depth]:
            break
        del parents[depth - 1][path[depth - 1]]
        changes.append({"action": "drop", "path": ".".join(path[:depth]), "policy": source, "reason": "empty_parent"})


def reference_policy(body, rules, endpoint, stream):
    out, changes = copy.deepcopy(body), []
    active = [r for r in rules if r.endpoint in ("any", endpoint) and r.stream in ("any", "stream" if stream else "non_stream")]
    for phase in ("reject", "allow_only", "drop", "rename", "set", "default"):
        for r in [r for r in active if r.action == phase]:
            dotted = ".".join(r.path)
            found, current = _ref_get(out, r.path)
            if phase == "reject" and found:
                raise PolicyRejected(dotted, r.message or f"Parameter '{dotted}' is not allowed on this route.")
            if phase == "allow_only":
                for key in list(out):
                    if key not in r.path and key not in ("model", "stream"):
                        del out[key]
                        changes.append({"action": "drop", "path": key, "policy": r.source, "rule": "allow_only"})
            if phase == "drop" and found:
                changes.append({"action": "drop", "path": dotted, "policy": r.source})
                _ref_delete(out, r.path, r.source, changes)
            if phase == "rename" and found and r.target != r.path:
                trial = copy.deepcopy(out)
                _ref_delete(trial, r.path, r.source, [])
                if _ref_can_create(trial, r.target):
                    changes.append({"action": "rename", "path": dotted, "to": ".".join(r.target), "policy": r.source})
                    _ref_delete(out, r.path, r.source, changes, keep=r.target)
                    _ref_create(out, r.target, current)
            if phase in ("set", "default"):
                if phase == "default" and found:
                    continue
                if found and json.dumps(current, sort_keys=True) == json.dumps(r.value, sort_keys=True):
                    continue
                if _ref_can_create(out, r.path):
                    _ref_create(out, r.path, copy.deepcopy(r.value))
                    changes.append({"action": phase, "path": dotted, "value": r.value, "policy": r.source})
    return out, changes


@settings(max_examples=400, deadline=None)
@given(case=policy_cases(("drop", "set", "default", "rename", "allow_only", "reject")),
       endpoint=st.sampled_from(ENDPOINTS), stream=st.booleans())
def test_property_matches_reference_implementation(case, endpoint, stream):
    body, rules = case
    try:
        expected_body, expected_changes = reference_policy(body, rules, endpoint, stream)
    except PolicyRejected as expected:
        with pytest.raises(PolicyRejected) as info:
            apply_policy(body, rules, endpoint=endpoint, stream=stream)
        assert (info.value.param, info.value.message) == (expected.param, expected.message)
        return
    result = apply_policy(body, rules, endpoint=endpoint, stream=stream)
    assert leaves(result.body) == leaves(expected_body)
    assert result.body == expected_body
    assert result.changes == expected_changes
