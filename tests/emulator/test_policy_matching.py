"""Device-policy resource matching as a unit: the backtracking-free matcher of iotda_emulator/device_policies.py
agrees with a naive recursive reference on thousands of random short resources and topics (every token kind:
plain characters, ``*`` one or more, ``?`` one, ``+``/``#`` plain, variables with a value or standing for one
level), ``device_of`` agrees with the former backreference regex wherever the device's level is delimited, and
topics that made the former regexes backtrack for hours are answered."""
from __future__ import annotations

import random
import re
from typing import List, Optional, Union

import pytest

from iotda_emulator import device_policies as dp
from iotda_emulator.device_policies import DEVICE_VAR, PRODUCT_VAR, WildcardMatcher, resource_tokens
from iotda_emulator.store import Store

LEVEL = ("level",)          # a variable without a value: one or more characters other than "/"
Item = Union[str, tuple]


def _items(resource: str, device: Optional[str], product: Optional[str]) -> List[Item]:
    out: List[Item] = []
    for part in re.split(r"(\$\{devices\.(?:deviceId|productId)\})", resource[len("topic:"):]):
        if part in (DEVICE_VAR, PRODUCT_VAR):
            value = device if part == DEVICE_VAR else product
            out += [LEVEL] if value is None else list(value)
        else:
            out += [("star",) if c == "*" else ("one",) if c == "?" else c for c in part]
    return out


def naive(items: List[Item], topic: str) -> bool:
    """The definition, tried every way (exponential: short inputs only)."""
    if not items:
        return topic == ""
    head, rest = items[0], items[1:]
    if head == ("star",):
        return any(naive(rest, topic[k:]) for k in range(1, len(topic) + 1))
    if head == LEVEL:
        return any(naive(rest, topic[k:]) for k in range(1, len(topic) + 1) if "/" not in topic[:k])
    if head == ("one",):
        return topic != "" and naive(rest, topic[1:])
    return topic[:1] == head and naive(rest, topic[1:])


def _instance(rng: random.Random, items: List[Item]) -> str:
    """A topic the items match (then possibly mutated), so that both outcomes are common."""
    out = []
    for it in items:
        if it == ("star",):
            out.append("".join(rng.choice("ab/") for _ in range(rng.randint(1, 3))))
        elif it == ("one",):
            out.append(rng.choice("ab/+"))
        elif it == LEVEL:
            out.append("".join(rng.choice("ab") for _ in range(rng.randint(1, 2))))
        else:
            out.append(it)
    topic = "".join(out)
    if topic and rng.random() < 0.4:
        i = rng.randrange(len(topic))
        topic = topic[:i] + rng.choice(["", "a", "/", "#", "ab"]) + topic[i + 1:]
    return topic


def _random_resource(rng: random.Random, variables: bool) -> str:
    pieces = list("ab/*?+#") + ([DEVICE_VAR, PRODUCT_VAR] if variables else [])
    return "topic:" + "".join(rng.choice(pieces) for _ in range(rng.randint(0, 7)))


@pytest.mark.parametrize("variables", [False, True])
def test_matcher_agrees_with_the_naive_reference(variables: bool) -> None:
    rng = random.Random(20261206 + variables)
    outcomes = set()
    for _ in range(4000):
        resource = _random_resource(rng, variables)
        device, product = rng.choice([("d1", "p/1"), (None, "p1"), ("a", None), (None, None)])
        items = _items(resource, device, product)
        topic = _instance(rng, items) if rng.random() < 0.7 else \
            "".join(rng.choice("ab/+#") for _ in range(rng.randint(0, 9)))
        expected = naive(items, topic)
        assert WildcardMatcher(resource_tokens(resource, device, product)).matches(topic) is expected, \
            (resource, device, product, topic)
        outcomes.add(expected)
    assert outcomes == {True, False}


@pytest.mark.parametrize("resource,topic,expected", [
    ("topic:a/*", "a/", False), ("topic:a/*", "a/b/c", True), ("topic:*", "", False), ("topic:", "", True),
    ("topic:**", "a", False), ("topic:**", "ab", True), ("topic:a?c", "a/c", True), ("topic:*a*", "aa", False),
    ("topic:*a*", "bab", True), ("topic:a*b*c", "axbyc", True), ("topic:a*b*c", "abbc", False),
])
def test_matcher_edges(resource: str, topic: str, expected: bool) -> None:
    assert WildcardMatcher(resource_tokens(resource, "d", "p")).matches(topic) is expected
    assert naive(_items(resource, "d", "p"), topic) is expected


def test_topics_that_made_regexes_backtrack_are_answered() -> None:
    """No timing assertion: before the fix, the first check alone ran for hours (the hang guard with a time
    limit is tests/reliability/test_hostile_devices.py)."""
    resource = "topic:${devices.deviceId}/" + "*/" * 10 + "x"
    evil = "d1/" + "a/" * 2000 + "y"
    assert not WildcardMatcher(resource_tokens(resource, "d1", "p")).matches(evil)
    assert WildcardMatcher(resource_tokens(resource, "d1", "p")).matches(evil[:-1] + "x")
    assert not WildcardMatcher(resource_tokens("topic:*a*a*a*a*a*a*a*a*a*a*b", "d", "p")).matches("a" * 5000)
    assert not WildcardMatcher(resource_tokens("topic:${devices.productId}/" + "*/" * 10 + "x", "d", None)
                               ).matches("p/" + "a/" * 2000 + "y")


# ---- device_of ----------------------------------------------------------------------------------------

def _old_device_of(resource: str, topic: str) -> Optional[str]:
    """The former backreference regex (exponential on long topics; short ones here)."""
    out, seen = [], False
    for part in re.split(r"(\$\{devices\.(?:deviceId|productId)\})", resource[len("topic:"):]):
        if part == DEVICE_VAR:
            out.append("(?P=device)" if seen else "(?P<device>[^/]+)")
            seen = True
        elif part == PRODUCT_VAR:
            out.append("[^/]+")
        else:
            out.append("".join(".+" if c == "*" else "." if c == "?" else re.escape(c) for c in part))
    m = re.fullmatch("".join(out), topic, re.S)
    return m.group("device") if m else None


def test_device_of_agrees_with_the_former_regex_where_the_level_is_delimited() -> None:
    rng = random.Random(7)
    found = 0
    for _ in range(4000):
        resource = _random_resource(rng, False)
        cut = rng.randint(len("topic:"), len(resource))
        resource = resource[:cut] + rng.choice(["", "-", "/", "x-"]) + DEVICE_VAR + \
            rng.choice(["", "-", "/", "/" + DEVICE_VAR, "/" + PRODUCT_VAR]) + resource[cut:]
        finder = dp._DeviceFinder(resource)
        topic = _instance(rng, _items(resource, rng.choice(["d1", "e"]), "p1"))
        mine, old = finder.device_of(topic), _old_device_of(resource, topic)
        if mine is not None:   # always a real answer: the resource with that id matches
            found += 1
            assert old is not None and "/" not in mine and naive(_items(resource, mine, None), topic), \
                (resource, topic, mine)
        if finder.usable and finder.index is not None and not finder.open_left and not finder.open_right:
            assert mine == old, (resource, topic)
    assert found > 500


def test_device_of_through_policies(tmp_path) -> None:
    policies = dp.DevicePolicies(Store(str(tmp_path / "p.db")))
    resources = ["topic:/v1/${devices.deviceId}/up", "topic:*/dev-${devices.deviceId}/${devices.productId}",
                 "topic:*/m/${devices.deviceId}/*", "topic:${devices.deviceId}/" + "*/" * 10 + "x"]
    policies.create_policy("attr", [{"effect": "ALLOW", "actions": [dp.PUBLISH_ACTION], "resources": resources}])
    assert policies.device_of("/v1/d7/up") == "d7"
    assert policies.device_of("/v1/d7/down") is None
    assert policies.device_of("a/b/dev-d8/p1") == "d8"                 # counted from the end
    assert policies.device_of("a/b/dev-d8/p1/x") is None
    assert policies.device_of("q/m/d9/r/s") == "d9"                     # wildcards on both sides: levels tried
    assert policies.device_of("d1/" + "a/" * 2000 + "y") is None        # answered, no backtracking
    assert policies.device_of("d1/" + "a/" * 10 + "x") == "d1"
