"""``report_properties`` builds its payload in one pass for a plain list of plain ServiceProperty objects
(doc/performance.md, "Current figures"); every other shape takes the general path. Both must put the same
bytes on the wire as ``to_dict()`` describes, which the platform's trace shows."""
from __future__ import annotations

from typing import Any, Dict, List

import pytest

from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.protocol import codec, topics


class _TaggedProperty(ServiceProperty):
    """A user's subclass: it must still go through its own ``to_dict()``."""

    def to_dict(self) -> Dict[str, Any]:
        d = super().to_dict()
        d["properties"] = dict(d["properties"], tagged=True)
        return d


def _expected(services: List[ServiceProperty]) -> bytes:
    entries = []
    for sp in services:
        d = sp.to_dict()
        if d.get("event_time") in (None, ""):
            d.pop("event_time", None)
        entries.append(d)
    return codec.dumps_bytes({"services": entries})


CASES = {
    "plain": lambda: [ServiceProperty("a", {"x": 1}), ServiceProperty("b", {"y": "ü"})],
    "event_time": lambda: [ServiceProperty("a", {"x": 1}, "20261206T220000Z"), ServiceProperty("b", {}, "")],
    "tuple": lambda: (ServiceProperty("a", {"x": 1}),),
    "subclass_second": lambda: [ServiceProperty("a", {"x": 1}), _TaggedProperty("b", {"y": 2})],
    "subclass_only": lambda: [_TaggedProperty("b", {"y": 2})],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_report_properties_sends_what_to_dict_says(emulator, make_device, case):
    device = make_device()
    did = device.get_device_id()
    services = CASES[case]()
    since = emulator.trace(did, "up", topics.PROPERTIES_REPORT, newest=True, limit=1)
    since_id = since[0].id if since else 0
    device.get_client().report_properties(services).result(10)
    entry = emulator.wait_for_trace(lambda e: e.device_id == did and e.kind == topics.PROPERTIES_REPORT,
                                    timeout=10, since_id=since_id)
    assert entry.payload == _expected(list(services))
    if case.startswith("subclass"):
        assert b'"tagged":true' in entry.payload  # the subclass's to_dict() was used, not the fast path


def test_a_bad_item_after_good_ones_names_its_index(emulator, make_device):
    client = make_device().get_client()
    with pytest.raises(TypeError, match=r"services\[1\]: must be a ServiceProperty"):
        client.report_properties([ServiceProperty("a", {"x": 1}), "b"])  # type: ignore[list-item]
    with pytest.raises(ValueError, match=r"services\[1\].service_id"):
        client.report_properties([ServiceProperty("a", {"x": 1}), ServiceProperty("", {"y": 1})])
    with pytest.raises(TypeError, match=r"services\[0\].properties"):
        client.report_properties([ServiceProperty("a", [1])])  # type: ignore[arg-type]
