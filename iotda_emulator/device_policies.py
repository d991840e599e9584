"""IoTDA device policies: which topics outside ``$oc`` a device may publish and subscribe to.

A policy is a list of statements ``{effect: ALLOW|DENY, actions: [...], resources: [...]}`` bound to targets:
devices, products, the resource space (``app``) and, as an emulator extension, static device groups
(``group``). A device may use a topic when a statement of a policy bound to it (directly, through its product,
its resource space or one of its static groups) allows the action on a resource matching the topic, and no such
statement denies it: DENY wins over ALLOW (IoTDA's rule).

Resources use IoTDA's syntax: ``topic:`` followed by the topic, in which ``*`` stands for one or more characters
(``/`` included), ``?`` for exactly one character, and ``+``/``#`` are ordinary characters; the variables
``${devices.deviceId}`` and ``${devices.productId}`` become the device's id and product id. A SUBSCRIBE's
filter is matched as a string, so ``a/#`` is granted by ``topic:a/#`` or ``topic:a/*``, not by ``topic:a/b``.
Actions: ``iotda:devices:publish`` and ``iotda:devices:subscribe``.

The Python :meth:`~iotda_emulator.emulator.Emulator.add_topic_policy` (an MQTT filter with ``%u``) is stored
here too, as resources of the policy :data:`PYTHON_POLICY_NAME` bound to the resource space: one source of truth.

Limits (IoTDA's): 50 policies, 5 policies per target, 10 statements of 10 resources, a 10 KB document.
Choices where IoTDA is silent (doc/emulator.md): names are unique; deleting a policy unbinds it; unbinding a
target that is not bound is a failure entry; a device's bindings go with the device.

Every change bumps :attr:`DevicePolicies.generation`: whoever caches topic decisions per link compares it.
"""
from __future__ import annotations

import functools
import json
import re
import secrets
import threading
import time
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from iotda_emulator.topic_acl import NO_POLICY

PUBLISH_ACTION = "iotda:devices:publish"
SUBSCRIBE_ACTION = "iotda:devices:subscribe"
ACTIONS = (PUBLISH_ACTION, SUBSCRIBE_ACTION)
ALLOW, DENY = "ALLOW", "DENY"
DEVICE, PRODUCT, APP, GROUP = "device", "product", "app", "group"
TARGET_TYPES = (DEVICE, PRODUCT, APP, GROUP)

MAX_POLICIES = 50
MAX_PER_TARGET = 5
MAX_STATEMENTS = 10
MAX_RESOURCES = 10
MAX_DOCUMENT = 10 * 1024
#: the emulator's one resource space (IoTDA's app), as the REST API shows it
APP_ID = "emulator_app"
#: the policy holding the patterns given to ``Emulator.add_topic_policy``
PYTHON_POLICY_NAME = "emulator_topic_policies"

DEVICE_VAR, PRODUCT_VAR = "${devices.deviceId}", "${devices.productId}"
NOT_GRANTED = NO_POLICY   # the access front's words for it
DENIED = "a device policy denies this topic"

_NAME_RE = re.compile(r"[A-Za-z0-9_\-]{1,128}")
_RESOURCE_RE = re.compile(r"topic:[A-Za-z0-9/{}$=+#?*:._\-]{1,128}")
_VAR_RE = re.compile(r"\$\{[^}]*\}")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS device_policies (
        seq        INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id  TEXT NOT NULL UNIQUE,
        name       TEXT NOT NULL UNIQUE,
        app_id     TEXT,
        statement  TEXT NOT NULL,
        created    REAL NOT NULL,
        updated    REAL NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS device_policy_targets (
        seq         INTEGER PRIMARY KEY AUTOINCREMENT,
        policy_id   TEXT NOT NULL,
        target_type TEXT NOT NULL,
        target_id   TEXT NOT NULL,
        UNIQUE (policy_id, target_type, target_id))""",
)


class PolicyError(ValueError):
    """A refused policy operation (the message says why)."""


class PolicyNotFound(PolicyError, KeyError):
    """No policy with that id."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "policy not found"


def validate_statements(statements: Any) -> List[Dict[str, Any]]:
    """The statements as stored (effect, actions, resources); raises :class:`PolicyError` for bad ones."""
    if not isinstance(statements, list) or not 1 <= len(statements) <= MAX_STATEMENTS:
        raise PolicyError(f"statement is a list of 1 to {MAX_STATEMENTS} statements")
    out = []
    for st in statements:
        if not isinstance(st, dict):
            raise PolicyError("each statement is an object {effect, actions, resources}")
        effect, actions, resources = st.get("effect"), st.get("actions"), st.get("resources")
        if effect not in (ALLOW, DENY):
            raise PolicyError("effect is ALLOW or DENY")
        if not isinstance(actions, list) or not actions or any(a not in ACTIONS for a in actions):
            raise PolicyError(f"actions is a non-empty list of {PUBLISH_ACTION} and {SUBSCRIBE_ACTION}")
        if not isinstance(resources, list) or not 1 <= len(resources) <= MAX_RESOURCES:
            raise PolicyError(f"resources is a list of 1 to {MAX_RESOURCES} topics")
        for r in resources:
            _check_resource(r)
        out.append({"effect": effect, "actions": list(dict.fromkeys(actions)), "resources": list(resources)})
    if len(json.dumps(out)) > MAX_DOCUMENT:
        raise PolicyError(f"the policy document exceeds {MAX_DOCUMENT} bytes")
    return out


def _check_resource(resource: Any) -> None:
    if not isinstance(resource, str) or not _RESOURCE_RE.fullmatch(resource):
        raise PolicyError(f"resource {resource!r}: 'topic:' and a topic of letters, digits and /{{}}$=+#?*:._- "
                          "(at most 128)")
    for var in _VAR_RE.findall(resource):
        if var not in (DEVICE_VAR, PRODUCT_VAR):
            raise PolicyError(f"resource {resource!r}: unknown variable {var} "
                              f"(known: {DEVICE_VAR}, {PRODUCT_VAR})")
    if _VAR_RE.sub("v", resource[len("topic:"):]).startswith("$"):
        raise PolicyError(f"resource {resource!r}: policies grant topics outside $oc only")


# ---- matching ------------------------------------------------------------------------------------------
# Why no regex per resource: ``*`` as ``.+`` backtracks exponentially on a topic the device chooses (a
# ten-star resource against a 200-level topic: hours, with the GIL held). The matchers below are linear in
# the topic (times the resource's length at worst), whatever the resource and topic.

_LIT, _ANY, _STAR, _LEVEL_CHAR, _LEVEL_RUN = range(5)   # token kinds of a compiled resource
_VAR_SPLIT = re.compile(r"(\$\{devices\.(?:deviceId|productId)\})")
Token = Tuple[int, str]


def resource_tokens(resource: str, device_id: Optional[str] = None, product_id: Optional[str] = None) -> List[Token]:
    """The tokens of a resource (``topic:`` and a topic): ``*`` is one character then any run, ``?`` one
    character, every other character itself. A variable with a value becomes that value's characters; one
    without (None) stands for one level: one or more characters other than ``/``."""
    values = {DEVICE_VAR: device_id, PRODUCT_VAR: product_id}
    out: List[Token] = []
    for part in _VAR_SPLIT.split(resource[len("topic:"):]):
        if part in values:
            value = values[part]
            out += [(_LEVEL_CHAR, ""), (_LEVEL_RUN, "")] if value is None else [(_LIT, c) for c in value]
            continue
        for c in part:
            out += [(_ANY, ""), (_STAR, "")] if c == "*" else [(_ANY, "")] if c == "?" else [(_LIT, c)]
    return out


class WildcardMatcher:
    """Whether a whole topic matches a token list (:func:`resource_tokens`), without backtracking.

    Tokens of one-character and ``*`` kinds only (the usual case: variables replaced by the device's values)
    are split at the ``*`` runs into fixed-length segments: the first must start the topic, the last end it,
    and each middle one is taken at its leftmost place after the previous (leftmost is always safe when the
    gaps take any run). A fixed-length segment is found with a quantifier-free regex, i.e. at most its length
    of steps per position, in C. Tokens with one-level variables (``device_of``) run a bit-parallel NFA: a
    few big-integer operations per topic character.
    """

    def __init__(self, tokens: List[Token]) -> None:
        self._segments: Optional[List["re.Pattern[str]"]] = None
        if all(kind in (_LIT, _ANY, _STAR) for kind, _ in tokens):
            segments: List[List[Token]] = [[]]
            for kind, char in tokens:
                if kind == _STAR:
                    segments.append([])
                else:
                    segments[-1].append((kind, char))
            self._lengths = [len(s) for s in segments]
            self._segments = [re.compile("".join("." if k == _ANY else re.escape(c) for k, c in s), re.S)
                              for s in segments]
            return
        # NFA: bit i set = the first i tokens matched. Consuming tokens move a state one bit up; run tokens
        # (_STAR, _LEVEL_RUN) keep it and may also be skipped (epsilon).
        self._final = 1 << len(tokens)
        self._lit: Dict[str, int] = {}
        self._any_step = self._level_step = self._any_loop = self._level_loop = 0
        for i, (kind, char) in enumerate(tokens):
            bit = 1 << i
            if kind == _LIT:
                self._lit[char] = self._lit.get(char, 0) | bit
            elif kind == _ANY:
                self._any_step |= bit
            elif kind == _LEVEL_CHAR:
                self._level_step |= bit
            elif kind == _STAR:
                self._any_loop |= bit
            else:
                self._level_loop |= bit
        self._skippable = self._any_loop | self._level_loop

    def _close(self, states: int) -> int:
        while True:   # as many rounds as the longest row of run tokens (one, for resources)
            more = states | ((states & self._skippable) << 1)
            if more == states:
                return states
            states = more

    def matches(self, topic: str) -> bool:
        """Whether ``topic`` (all of it) matches."""
        segments = self._segments
        if segments is not None:
            lengths = self._lengths
            if len(segments) == 1:
                return len(topic) == lengths[0] and segments[0].match(topic) is not None
            end = len(topic) - lengths[-1]
            if end < lengths[0] + sum(lengths[1:-1]) or segments[0].match(topic) is None \
                    or segments[-1].match(topic, end) is None:
                return False
            pos = lengths[0]
            for segment in segments[1:-1]:
                found = segment.search(topic, pos, end)
                if found is None:
                    return False
                pos = found.end()
            return True
        states = self._close(1)
        for c in topic:
            step, loop = self._any_step | self._lit.get(c, 0), self._any_loop
            if c != "/":
                step, loop = step | self._level_step, loop | self._level_loop
            states = self._close(((states & step) << 1) | (states & loop))
            if not states:
                return False
        return bool(states & self._final)


@functools.lru_cache(maxsize=4096)
def _resource_matcher(resource: str, device_id: str, product_id: Optional[str]) -> WildcardMatcher:
    """The matcher of one resource for one device (variables replaced by its values; a None product id
    stands for any one level)."""
    return WildcardMatcher(resource_tokens(resource, device_id, product_id))


#: levels of a topic tried as the device id when a resource has wildcards on both sides of its variable
MAX_DEVICE_CANDIDATES = 64


class _DeviceFinder:
    """Which device a topic names through one ``${devices.deviceId}`` resource, by splitting the topic on
    ``/`` (the variable is one level's worth: no ``/``) and checking the resource with that id put in.

    The variable's level in the topic is known when no ``*``/``?`` precedes it in the resource (counted from
    the start) or none follows it (from the end); otherwise the topic's levels are tried right to left, at most
    :data:`MAX_DEVICE_CANDIDATES`. Within its level, the plain characters next to the variable are cut off; a
    wildcard or the other variable touching it with nothing plain between leaves its extent undefined, and
    such a resource attributes no topic.
    """

    def __init__(self, resource: str) -> None:
        self.resource = resource
        items: List[str] = []   # one character, or a whole variable
        for part in _VAR_SPLIT.split(resource[len("topic:"):]):
            items += [part] if part in (DEVICE_VAR, PRODUCT_VAR) else list(part)
        at = items.index(DEVICE_VAR)
        wild = ("*", "?")
        self.index: Optional[int] = items[:at].count("/")
        if any(i in wild for i in items[:at]):
            self.index = (-1 - items[at + 1:].count("/")) if not any(i in wild for i in items[at + 1:]) else None
        left = at
        while left > 0 and items[left - 1] != "/" and len(items[left - 1]) == 1 and items[left - 1] not in wild:
            left -= 1
        right = at + 1
        while right < len(items) and items[right] != "/" and len(items[right]) == 1 and items[right] not in wild:
            right += 1
        self.pre, self.post = "".join(items[left:at]), "".join(items[at + 1:right])
        self.open_left = left > 0 and items[left - 1] != "/"      # a wildcard or variable before pre
        self.open_right = right < len(items) and items[right] != "/"
        self.usable = bool(self.pre or not self.open_left) and bool(self.post or not self.open_right)

    def device_of(self, topic: str) -> Optional[str]:
        if not self.usable:
            return None
        levels = topic.split("/")
        if self.index is not None:
            candidates = levels[self.index:self.index + 1 or None] if -len(levels) <= self.index < len(levels) else []
        else:
            candidates = list(dict.fromkeys(reversed(levels)))[:MAX_DEVICE_CANDIDATES]
        for level in candidates:
            device = self._cut(level)
            if device and _resource_matcher(self.resource, device, None).matches(topic):
                return device
        return None

    def _cut(self, level: str) -> Optional[str]:
        """The level without the plain characters around the variable (None: they are not there)."""
        if self.open_left:
            start = level.rfind(self.pre)
            start = -1 if start < 0 else start + len(self.pre)
        else:
            start = len(self.pre) if level.startswith(self.pre) else -1
        if start < 0:
            return None
        rest = level[start:]
        if self.open_right:
            end = rest.find(self.post)
        else:
            end = len(rest) - len(self.post) if rest.endswith(self.post) else -1
        return rest[:end] if end >= 0 else None


def mqtt_pattern_resources(pattern: str) -> List[str]:
    """IoTDA resources for an ``add_topic_policy`` MQTT filter (``%u`` = the device id).

    ``%u`` becomes ``${devices.deviceId}``; ``+`` becomes ``*`` (wider: ``*`` also spans levels); a final ``#``
    becomes the parent topic itself plus ``parent/*``. Raises :class:`PolicyError` for ``*`` or ``?`` (wildcards
    in IoTDA's syntax, ordinary characters in MQTT's).
    """
    if "*" in pattern or "?" in pattern:
        raise PolicyError(f"pattern {pattern!r}: '*' and '?' are IoTDA policy wildcards; create a device policy")
    levels = [DEVICE_VAR if lv == "%u" else "*" if lv == "+" else lv for lv in pattern.split("/")]
    if levels[-1] != "#":
        return ["topic:" + "/".join(levels)]
    parent = "/".join(levels[:-1])
    return ["topic:" + parent, "topic:" + parent + "/*"] if parent else ["topic:*"]


class DevicePolicies:
    """Device policies and their bindings over the emulator's :class:`~iotda_emulator.store.Store`.

    Decisions (:meth:`check`) read an in-memory copy rebuilt after every change, so a PUBLISH costs no query
    unless policies are bound to products or groups (then the device's product or groups are looked up).
    """

    def __init__(self, db: Any) -> None:
        self.db = db
        for statement in _SCHEMA:
            db.execute(statement)
        self._lock = threading.RLock()
        #: bumped by every change (policies or bindings)
        self.generation = 0
        self._policies: Dict[str, dict] = {}
        self._bindings: Dict[Tuple[str, str], List[str]] = {}
        self._reload()

    # ---- snapshot --------------------------------------------------------------------------------------
    def _reload(self) -> None:
        policies = {r["policy_id"]: _policy(r) for r in self.db.query("SELECT * FROM device_policies ORDER BY seq")}
        bindings: Dict[Tuple[str, str], List[str]] = {}
        for r in self.db.query("SELECT * FROM device_policy_targets ORDER BY seq"):
            if r["policy_id"] in policies:
                bindings.setdefault((r["target_type"], r["target_id"]), []).append(r["policy_id"])
        with self._lock:
            self._policies, self._bindings = policies, bindings
            self.generation += 1

    # ---- policies --------------------------------------------------------------------------------------
    def create_policy(self, name: str, statements: Any, app_id: Optional[str] = None) -> dict:
        """Create a policy; raises :class:`PolicyError` (bad name or statements, name taken, 50 exist)."""
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
            raise PolicyError("policy_name has 1 to 128 letters, digits, _ or -")
        stored = validate_statements(statements)
        with self._lock:
            if len(self._policies) >= MAX_POLICIES:
                raise PolicyError(f"at most {MAX_POLICIES} device policies exist at a time")
            if any(p["policy_name"] == name for p in self._policies.values()):
                raise PolicyError(f"a policy named {name!r} already exists")
            policy_id = secrets.token_hex(12)   # IoTDA's ids are 24 hex digits
            now = time.time()
            self.db.execute("INSERT INTO device_policies(policy_id, name, app_id, statement, created, updated) "
                            "VALUES (?,?,?,?,?,?)", (policy_id, name, app_id, json.dumps(stored), now, now))
            self._reload()
            return self._copy(policy_id)

    def get_policy(self, policy_id: str) -> Optional[dict]:
        """A copy of the policy or None."""
        with self._lock:
            return self._copy(policy_id) if policy_id in self._policies else None

    def list_policies(self, name: Optional[str] = None) -> List[dict]:
        """Every policy, newest first (with its ``marker``), optionally only the one named ``name``."""
        with self._lock:
            found = [self._copy(pid) for pid in self._policies]
        return [p for p in reversed(found) if not name or p["policy_name"] == name]

    def update_policy(self, policy_id: str, name: Optional[str] = None, statements: Any = None) -> dict:
        """Change a policy's name and/or statements (None = keep); the new record."""
        stored = validate_statements(statements) if statements is not None else None
        with self._lock:
            policy = self._require(policy_id)
            if name is not None and name != policy["policy_name"]:
                if not isinstance(name, str) or not _NAME_RE.fullmatch(name):
                    raise PolicyError("policy_name has 1 to 128 letters, digits, _ or -")
                if any(p["policy_name"] == name for p in self._policies.values()):
                    raise PolicyError(f"a policy named {name!r} already exists")
            self.db.execute("UPDATE device_policies SET name=?, statement=?, updated=? WHERE policy_id=?",
                            (name if name is not None else policy["policy_name"],
                             json.dumps(stored if stored is not None else policy["statement"]), time.time(),
                             policy_id))
            self._reload()
            return self._copy(policy_id)

    def delete_policy(self, policy_id: str) -> None:
        """Delete a policy and its bindings."""
        with self._lock:
            self._require(policy_id)
            with self.db.transaction() as conn:
                conn.execute("DELETE FROM device_policy_targets WHERE policy_id=?", (policy_id,))
                conn.execute("DELETE FROM device_policies WHERE policy_id=?", (policy_id,))
            self._reload()

    # ---- bindings --------------------------------------------------------------------------------------
    def bind(self, policy_id: str, target_type: str, target_ids: Iterable[str],
             target_error: Callable[[str], Optional[str]] = lambda t: None) -> Tuple[List[str], List[dict]]:
        """Bind a policy to targets: ``(success ids, [{target_id, error_code, error_msg}])``.

        ``target_error(target_id)`` says why a target cannot be bound (it does not exist...) or None. A target
        already bound counts as a success; one with :data:`MAX_PER_TARGET` other policies fails.
        """
        def refusal(target_id: str) -> Optional[str]:
            bound = self._bindings.get((target_type, target_id), [])
            why = target_error(target_id)
            if why is None and policy_id not in bound and len(bound) >= MAX_PER_TARGET:
                why = f"a target has at most {MAX_PER_TARGET} policies"
            return why

        return self._per_target(policy_id, target_type, target_ids, refusal,
                                "INSERT OR IGNORE INTO device_policy_targets(policy_id, target_type, target_id) "
                                "VALUES (?,?,?)")

    def unbind(self, policy_id: str, target_type: str, target_ids: Iterable[str]) -> Tuple[List[str], List[dict]]:
        """Unbind a policy from targets: ``(success ids, failures)``; a target not bound is a failure."""
        def refusal(target_id: str) -> Optional[str]:
            if policy_id not in self._bindings.get((target_type, target_id), []):
                return "the policy is not bound to this target"
            return None

        return self._per_target(policy_id, target_type, target_ids, refusal,
                                "DELETE FROM device_policy_targets WHERE policy_id=? AND target_type=? "
                                "AND target_id=?")

    def _per_target(self, policy_id: str, target_type: str, target_ids: Iterable[str],
                    refusal: Callable[[str], Optional[str]], sql: str) -> Tuple[List[str], List[dict]]:
        """What bind and unbind share: each distinct target is refused (``refusal`` says why, lock held) or
        has ``sql`` run with ``(policy_id, target_type, target_id)``; then the bindings are reloaded."""
        _check_target_type(target_type)
        ok: List[str] = []
        failed: List[dict] = []
        with self._lock:
            self._require(policy_id)
            for target_id in dict.fromkeys(target_ids):
                why = refusal(target_id)
                if why is not None:
                    failed.append(_failure(target_id, why))
                    continue
                self.db.execute(sql, (policy_id, target_type, target_id))
                ok.append(target_id)
            self._reload()
        return ok, failed

    def targets(self, policy_id: str, target_type: Optional[str] = None) -> List[dict]:
        """The targets of a policy, newest binding first: ``{target_type, target_id, marker}``."""
        if target_type is not None:
            _check_target_type(target_type)
        self._require(policy_id)
        rows = self.db.query("SELECT * FROM device_policy_targets WHERE policy_id=? ORDER BY seq DESC", (policy_id,))
        return [{"target_type": r["target_type"], "target_id": r["target_id"], "marker": f"{r['seq']:024x}"}
                for r in rows if target_type is None or r["target_type"] == target_type]

    def forget_target(self, target_type: str, target_id: str) -> None:
        """Remove every binding of a target that no longer exists (a deleted device, group or product)."""
        with self._lock:
            if (target_type, target_id) not in self._bindings:
                return
            self.db.execute("DELETE FROM device_policy_targets WHERE target_type=? AND target_id=?",
                            (target_type, target_id))
            self._reload()

    # ---- the Python API's patterns ---------------------------------------------------------------------
    def add_mqtt_pattern(self, pattern: str, app_id: str) -> None:
        """Allow every device of ``app_id`` to publish and subscribe on an MQTT filter (``%u`` = its id):
        resources of the policy :data:`PYTHON_POLICY_NAME`, created and bound to the app when needed."""
        resources = mqtt_pattern_resources(pattern)
        for r in resources:
            _check_resource(r)
        with self._lock:
            policy = next((p for p in self._policies.values() if p["policy_name"] == PYTHON_POLICY_NAME), None)
            if policy is None:
                statements = [{"effect": ALLOW, "actions": list(ACTIONS), "resources": resources}]
                policy = self.create_policy(PYTHON_POLICY_NAME, statements, app_id)
            else:
                statements = [dict(s, resources=list(s["resources"])) for s in policy["statement"]]
                have = {r for s in statements for r in s["resources"]}
                for r in resources:
                    if r in have:
                        continue
                    if len(statements[-1]["resources"]) >= MAX_RESOURCES:
                        statements.append({"effect": ALLOW, "actions": list(ACTIONS), "resources": []})
                    statements[-1]["resources"].append(r)
                    have.add(r)
                if statements != policy["statement"]:
                    self.update_policy(policy["policy_id"], statements=statements)
            if policy["policy_id"] not in self._bindings.get((APP, app_id), []):
                _, failed = self.bind(policy["policy_id"], APP, [app_id])
                if failed:
                    raise PolicyError(failed[0]["error_msg"])

    # ---- decisions -------------------------------------------------------------------------------------
    def check(self, device_id: str, action: str, topic: str, *, app_id: str,
              product_of: Callable[[str], Optional[str]], groups_of: Callable[[str], List[str]]) -> Optional[str]:
        """None when the device may ``action`` (:data:`PUBLISH_ACTION` / :data:`SUBSCRIBE_ACTION`) on
        ``topic`` (a topic name, or a SUBSCRIBE's filter matched as a string); otherwise why not.

        ``product_of(device_id)`` and ``groups_of(device_id)`` (its static group ids) are called only when a
        policy is bound to a product or a group, or a resource names the product id.
        """
        with self._lock:
            policies, bindings = self._policies, self._bindings
        if not bindings:
            return NOT_GRANTED
        product: List[Optional[str]] = []

        def product_id() -> str:
            if not product:
                product.append(product_of(device_id))
            return product[0] or ""

        ids = list(bindings.get((DEVICE, device_id), ())) + list(bindings.get((APP, app_id), ()))
        if any(t == PRODUCT for t, _ in bindings) and product_id():
            ids += bindings.get((PRODUCT, product_id()), [])
        if any(t == GROUP for t, _ in bindings):
            for group_id in groups_of(device_id):
                ids += bindings.get((GROUP, group_id), [])
        allowed = False
        for pid in dict.fromkeys(ids):
            policy = policies.get(pid)
            for st in policy["statement"] if policy else ():
                if action not in st["actions"]:
                    continue
                for r in st["resources"]:
                    pid_needed = PRODUCT_VAR in r
                    if _resource_matcher(r, device_id, product_id() if pid_needed else "").matches(topic):
                        if st["effect"] == DENY:
                            return DENIED
                        allowed = True
                        break
        return None if allowed else NOT_GRANTED

    def topic_check(self, product_of: Callable[[str], Optional[str]], groups_of: Callable[[str], List[str]],
                    app_id: str = APP_ID) -> Callable[[str, str, str], Optional[str]]:
        """:meth:`check` as the access front's ``policy_check(device_id, action, topic)``, where action is
        ``"publish"`` or ``"subscribe"`` (:mod:`iotda_emulator.topic_acl`)."""
        actions = {"publish": PUBLISH_ACTION, "subscribe": SUBSCRIBE_ACTION}

        def policy_check(device_id: str, action: str, topic: str) -> Optional[str]:
            return self.check(device_id, actions[action], topic, app_id=app_id, product_of=product_of,
                              groups_of=groups_of)
        return policy_check

    def device_of(self, topic: str) -> Optional[str]:
        """The device id a topic names through a bound policy's ``${devices.deviceId}`` resource, or None
        (the platform traces policy traffic under that id; a topic without it belongs to no device)."""
        with self._lock:
            finders = self._device_finders_of(self.generation)
        for finder in finders:
            device = finder.device_of(topic)
            if device is not None:
                return device
        return None

    @functools.lru_cache(maxsize=8)   # noqa: B019 - one entry per generation, a handful of generations
    def _device_finders_of(self, generation: int) -> Tuple[_DeviceFinder, ...]:
        return tuple(_DeviceFinder(r) for policy in self._policies.values() for st in policy["statement"]
                     for r in st["resources"] if DEVICE_VAR in r)

    # ---- helpers ---------------------------------------------------------------------------------------
    def _require(self, policy_id: str) -> dict:
        policy = self._policies.get(policy_id)
        if policy is None:
            raise PolicyNotFound(f"the device policy {policy_id} does not exist")
        return policy

    def _copy(self, policy_id: str) -> dict:
        p = self._policies[policy_id]
        return dict(p, statement=[dict(s, actions=list(s["actions"]), resources=list(s["resources"]))
                                  for s in p["statement"]])


def _check_target_type(target_type: Any) -> None:
    if target_type not in TARGET_TYPES:
        raise PolicyError("target_type is device, product, app or group")


def _failure(target_id: str, why: str) -> dict:
    return {"target_id": target_id, "error_code": "IOTDA.000006", "error_msg": f"Invalid input data. {why}."}


def _policy(row: Any) -> dict:
    return {"policy_id": row["policy_id"], "policy_name": row["name"], "app_id": row["app_id"],
            "statement": json.loads(row["statement"]), "created": row["created"], "updated": row["updated"],
            "marker": f"{row['seq']:024x}"}
