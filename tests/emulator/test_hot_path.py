"""The emulator's per-message hot path (issue 15): batched sqlite commits, chunked packet reading, the core's
dispatcher hand-over and buffered broker socket, the front's broker connect under a full listen backlog."""
from __future__ import annotations

import asyncio
import os
import socket
import sqlite3
import threading
import time

import pytest

from iotda_emulator import mqtt_packets as mp
from iotda_emulator.access_front import _open_unix
from iotda_emulator.core import _BufferedSocket
from iotda_emulator.store import Store

_INSERT = "INSERT INTO trace(time, device_id, direction, kind, topic, payload) VALUES (?,?,?,?,?,?)"


def _trace_rows(path: str) -> int:
    with sqlite3.connect(path) as other:  # another connection, as another process would read the file
        return other.execute("SELECT COUNT(*) FROM trace").fetchone()[0]


def test_deferred_writes_are_read_at_once_and_committed_within_the_interval(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    store = Store(path, commit_interval=0.3)
    try:
        cur = store.deferred(_INSERT, (time.time(), "d1", "up", "k", "t", b"x"))
        assert cur.lastrowid == 1
        # the same Store (every reader in the emulator) sees the row before any commit ...
        assert store.query("SELECT device_id FROM trace")[0]["device_id"] == "d1"
        # ... another connection only after the batch's commit, which comes without further writes
        assert _trace_rows(path) == 0
        deadline = time.monotonic() + 5
        while _trace_rows(path) == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _trace_rows(path) == 1
    finally:
        store.close()


def test_other_writes_and_close_commit_the_open_batch(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    store = Store(path, commit_interval=60)
    store.deferred(_INSERT, (time.time(), "d1", "up", "k", "t", b"x"))
    store.execute("INSERT INTO devices(device_id, product_id, node_id, created) VALUES ('a', 'p', 'n', 0)")
    assert _trace_rows(path) == 1   # committed with the autocommit write, not 60 s later
    with store.batched() as conn:
        conn.execute(_INSERT, (time.time(), "d2", "up", "k", "t", b"y"))
    with pytest.raises(ValueError):
        with store.batched() as conn:   # a failing group is undone, the batch before it kept
            conn.execute(_INSERT, (time.time(), "d3", "up", "k", "t", b"z"))
            raise ValueError("boom")
    with store.transaction() as conn:   # BEGIN IMMEDIATE after committing the batch
        conn.execute("UPDATE devices SET name='n' WHERE device_id='a'")
    store.deferred(_INSERT, (time.time(), "d4", "up", "k", "t", b"w"))
    store.close()
    with sqlite3.connect(path) as other:
        assert [r[0] for r in other.execute("SELECT device_id FROM trace ORDER BY id")] == ["d1", "d2", "d4"]


def test_a_full_batch_commits_at_once(tmp_path):
    path = str(tmp_path / "s.sqlite3")
    store = Store(path, commit_interval=60, commit_rows=10)
    try:
        for i in range(11):
            store.deferred(_INSERT, (time.time(), f"d{i}", "up", "k", "t", b"x"))
        assert _trace_rows(path) >= 10
    finally:
        store.close()


def test_packet_reader_returns_every_packet_of_a_chunk_then_the_error():
    async def run():
        good = [mp.encode_publish("a/b", bytes(n), qos=1, packet_id=k + 1) for k, n in enumerate((0, 5, 300, 70000))]
        reader = asyncio.StreamReader()
        data = b"".join(good)
        for k in range(0, len(data), 333):   # arbitrary cuts across packet boundaries
            reader.feed_data(data[k:k + 333])
        reader.feed_data(bytes([0x30]) + mp.encode_varint(100000))   # a header announcing too much
        reader.feed_eof()
        packets = mp.PacketReader(reader, max_size=4096 * 20)
        got = []
        with pytest.raises(mp.PacketTooLarge) as err:
            while True:
                batch = await packets.read_packets()
                assert batch   # never an empty batch before the error
                got += batch
        assert [p.raw for p in got] == good and all(p.raw.endswith(p.body) for p in got)
        assert err.value.length == 100000
        cut = asyncio.StreamReader()
        cut.feed_data(good[1][:-1])
        cut.feed_eof()
        with pytest.raises(asyncio.IncompleteReadError):
            await mp.PacketReader(cut).read_packets()
        empty = asyncio.StreamReader()
        empty.feed_eof()
        assert await mp.PacketReader(empty).read_packets() == []
        long_length = asyncio.StreamReader()   # a good packet, then a remaining length of 5 bytes
        long_length.feed_data(good[0] + bytes([0x30, 0x80, 0x80, 0x80, 0x80, 0x01]))
        packets = mp.PacketReader(long_length)
        assert [p.raw for p in await packets.read_packets()] == [good[0]]
        with pytest.raises(mp.PacketError, match="longer than 4 bytes"):
            await packets.read_packets()

    asyncio.run(run())


def test_next_packet_takes_only_a_whole_packet_within_the_limit():
    one = mp.encode_publish("a/b", b"xyz", qos=1, packet_id=7)
    two = mp.encode_publish("c", bytes(200), qos=0)
    data = one + two
    pkt, end = mp.next_packet(data, 0)
    assert (pkt.raw, pkt.first_byte, end) == (one, one[0], len(one)) and one.endswith(pkt.body)
    pkt, end = mp.next_packet(data, len(one))
    assert (pkt.raw, end) == (two, len(data))
    assert mp.next_packet(data[:-1], len(one)) is None                   # body not all there
    assert mp.next_packet(two[:2], 0) is None                            # length bytes not all there
    assert mp.next_packet(two, 0, max_size=100) is None                  # over the limit
    assert mp.next_packet(bytes([0x30, 0x80, 0x80, 0x80, 0x80, 0x01, 0]), 0) is None   # 5-byte length


def test_buffered_socket_serves_small_reads_from_one_recv():
    a, b = socket.socketpair()
    try:
        a.setblocking(False)
        wrapped = _BufferedSocket(a)
        b.sendall(b"\x30\x03abc\x40\x02\x00\x01")
        time.sleep(0.05)
        assert wrapped.recv(1) == b"\x30" and wrapped.pending() == 8
        assert wrapped.recv(1) == b"\x03" and wrapped.recv(10) == b"abc\x40\x02\x00\x01"
        assert wrapped.pending() == 0
        with pytest.raises(BlockingIOError):   # nothing buffered, nothing arrived: as the plain socket
            wrapped.recv(1)
        assert wrapped.fileno() == a.fileno()   # everything else is the socket's own
        b.close()
        assert wrapped.recv(1) == b""
    finally:
        a.close()
        b.close()


def test_dispatcher_runs_items_from_many_threads_in_order(emulator):
    core = emulator.core
    seen = {t: [] for t in range(4)}
    done = threading.Event()

    def put(t):
        for i in range(2000):
            core._dispatch(seen[t].append, i)
            if i % 97 == 0:
                time.sleep(0.002)   # let the dispatcher go idle now and then: the wake-up path

    threads = [threading.Thread(target=put, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    core._dispatch(done.set)
    assert done.wait(10)
    assert all(seen[t] == list(range(2000)) for t in range(4))


@pytest.mark.skipif(not hasattr(socket, "AF_UNIX"), reason="unix sockets only")
def test_broker_connect_waits_out_a_full_listen_backlog(tmp_path):
    path = os.path.join(str(tmp_path), "b.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(1)   # nobody accepts at first: a few connects fill the backlog, the rest get EAGAIN

    def accept_later():
        time.sleep(0.5)
        for _ in range(8):
            conn, _ = server.accept()
            conn.sendall(b"hello")

    acceptor = threading.Thread(target=accept_later)
    acceptor.start()

    async def run():
        pairs = await asyncio.gather(*(asyncio.wait_for(_open_unix(path), 10) for _ in range(8)))
        for reader, writer in pairs:
            assert await asyncio.wait_for(reader.readexactly(5), 5) == b"hello"   # really connected
            writer.close()

    try:
        asyncio.run(run())
    finally:
        acceptor.join()
        server.close()
