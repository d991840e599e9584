"""Many lightweight MQTT devices in one process, for the emulator scale run: ``python -m tests.bench.emu_swarm``.

Reads one JSON spec line on stdin: host, port, records (device records), concurrency (connects in flight).
Connects every device (MQTT 3.1.1, IoTDA credentials, keep-alive 1200 s) and prints one JSON line
(``phase: connected``). Then, for each ``go RATE DURATION`` line, publishes QoS 1 property reports at RATE per
second (round robin over its devices) for DURATION seconds, waits up to 60 s for the PUBACKs and prints a result
line; any other line or EOF ends it. Raw asyncio sockets and hand-built packets: the devices must
cost little CPU, since they share the machine with the emulator being measured.
"""
from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any, Dict, List, Optional

from iot_device_sdk_python.protocol import codec, topics
from iot_device_sdk_python.utils import iot_util
from iotda_emulator import mqtt_packets
from tests.bench.common import raise_nofile


def _connect_packet(record: Dict[str, str], stamp: str) -> bytes:
    dev = record["device_id"]
    return mqtt_packets.encode_connect(mqtt_packets.ConnectInfo(
        "MQTT", 4, 0x02, 1200, f"{dev}_0_0_{stamp}", username=dev,
        password=iot_util.sha256_mac(record["secret"], stamp).encode()))


class _Device:
    __slots__ = ("record", "writer", "topic", "pid", "acked", "closed")

    def __init__(self, record: Dict[str, str]) -> None:
        self.record = record
        self.writer: Optional[asyncio.StreamWriter] = None
        self.topic = topics.properties_report(record["device_id"])
        self.pid = 0
        self.acked = 0
        self.closed = False

    def publish(self, seq: int) -> None:
        self.pid = self.pid % 0xFFFF + 1
        payload = codec.dumps_bytes({"services": [{"service_id": "bench", "properties": {"seq": seq, "t": 21.5}}]})
        self.writer.write(mqtt_packets.encode_publish(self.topic, payload, qos=1, packet_id=self.pid))


async def _reader(dev: _Device, reader: asyncio.StreamReader) -> None:
    packets = mqtt_packets.PacketReader(reader)
    try:
        while True:
            got = await packets.read_packets()
            if not got:
                break
            dev.acked += sum(1 for p in got if p.type == mqtt_packets.PUBACK)
    except (ConnectionError, OSError, EOFError, mqtt_packets.PacketError):
        pass
    dev.closed = True


async def _connect(dev: _Device, host: str, port: int, stamp: str, sem: asyncio.Semaphore,
                   readers: List[asyncio.Task]) -> Optional[str]:
    async with sem:
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 30)
            writer.write(_connect_packet(dev.record, stamp))
            ack = await asyncio.wait_for(reader.readexactly(4), 30)
        except (OSError, asyncio.TimeoutError, asyncio.IncompleteReadError) as exc:
            return type(exc).__name__
        if ack[0] != 0x20 or ack[3] != 0:
            writer.close()
            return f"CONNACK {ack[3]}"
        dev.writer = writer
        readers.append(asyncio.ensure_future(_reader(dev, reader)))
        return None


async def _main(spec: Dict[str, Any]) -> None:
    loop = asyncio.get_running_loop()
    devices = [_Device(r) for r in spec["records"]]
    stamp = codec.utc_hour_stamp()
    sem = asyncio.Semaphore(spec.get("concurrency", 32))
    readers: List[asyncio.Task] = []
    t0 = time.perf_counter()
    errors = await asyncio.gather(*(_connect(d, spec["host"], spec["port"], stamp, sem, readers) for d in devices))
    live = [d for d in devices if d.writer is not None]
    kinds: Dict[str, int] = {}
    for e in errors:
        if e:
            kinds[e] = kinds.get(e, 0) + 1
    print(json.dumps({"phase": "connected", "connected": len(live), "connect_s": round(time.perf_counter() - t0, 2),
                      "errors": kinds}), flush=True)
    i = 0
    while True:
        line = (await loop.run_in_executor(None, sys.stdin.readline)).split()  # "go RATE DURATION" or EOF
        if len(line) != 3 or line[0] != "go":
            break
        i = await _phase(live, float(line[1]), float(line[2]), i)
    for d in live:
        d.writer.close()
    for t in readers:
        t.cancel()


async def _phase(live: List[_Device], rate: float, duration: float, i: int) -> int:
    """Publish ``rate`` reports/s for ``duration`` s round robin from device ``i`` on; print the result line."""
    acked0 = sum(d.acked for d in live)
    sent, start = 0, time.perf_counter()
    while live:
        elapsed = time.perf_counter() - start
        if elapsed >= duration:
            break
        due = min(int(rate * elapsed), int(rate * duration)) - sent
        for _ in range(due):
            d = live[i % len(live)]
            i += 1
            if not d.closed:
                d.publish(sent)
            sent += 1
        await asyncio.sleep(0.005)
    for _ in range(int(rate * duration) - sent):  # the last tick's share
        d = live[i % len(live)]
        i += 1
        if not d.closed:
            d.publish(sent)
        sent += 1
    send_s = time.perf_counter() - start
    deadline = time.perf_counter() + 60
    while sum(d.acked for d in live) - acked0 < sent and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    acked = sum(d.acked for d in live) - acked0
    print(json.dumps({"phase": "done", "sent": sent, "acked": acked, "send_s": round(send_s, 2),
                      "acked_after_s": round(time.perf_counter() - start, 2),
                      "closed_by_peer": sum(1 for d in live if d.closed)}), flush=True)
    return i


def main() -> None:
    spec = json.loads(sys.stdin.readline())
    raise_nofile(len(spec["records"]) + 256)
    asyncio.run(_main(spec))


if __name__ == "__main__":
    main()
