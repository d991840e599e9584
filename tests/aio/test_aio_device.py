"""The asyncio API (iot_device_sdk_python.aio) on the emulator: real broker, real sockets, one event loop."""
from __future__ import annotations

import asyncio
import gc
import socket
import threading

import pytest

from iot_device_sdk_python.aio import AsyncIotDevice, CommandRequest, PropertyGetRequest, PropertySetRequest
from iot_device_sdk_python.aio import _bridge
from iot_device_sdk_python.client.iot_result import IotResult
from iot_device_sdk_python.client.request.command_response import CommandRsp
from iot_device_sdk_python.client.request.device_message import DeviceMessage
from iot_device_sdk_python.client.request.service_property import ServiceProperty
from iot_device_sdk_python.errors import ConnectRefusedError, IotDeviceError, IotTimeoutError
from iot_device_sdk_python.iot_device import IotDevice
from iot_device_sdk_python.service.abstract_service import AbstractService
from iot_device_sdk_python.service.abstract_service import command as service_command
from iot_device_sdk_python.transport.publish_handle import PublishError, PublishHandle
from tests.fixtures_sdk import build_client_conf


def run(coro, timeout: float = 90.0):
    """Run ``coro`` on a fresh event loop, bounded so that a hang fails the test instead of the run."""
    return asyncio.run(asyncio.wait_for(coro, timeout))


def new_device(emulator, record=None, **settings) -> AsyncIotDevice:
    rec = record if record is not None else emulator.create_device()
    return AsyncIotDevice(build_client_conf(emulator, rec, **settings))


def sync_listeners(device: AsyncIotDevice):
    """The threaded client's listener slots, which the async client fills only while it has consumers."""
    c = device.iot_device.get_client()
    return c._command_listener, c._property_listener, c._raw_device_msg_listener


class Echo(AbstractService):
    """A profile service with one command, to see requests that went back to the services."""

    @service_command("echo")
    def echo(self, paras):
        return CommandRsp(0, "echo", {"from": "service", **paras})


def test_connect_report_and_respond(emulator):
    """connect, report resolved on PUBACK, then command / property set / property get / message streams."""
    async def main():
        async with new_device(emulator) as device:
            client = device.get_client()
            dev_id = device.get_device_id()
            assert device.is_connected()
            mid = await client.report_properties([ServiceProperty("smokeDetector", {"alarm": 1})], timeout=10)
            assert isinstance(mid, int) and mid > 0
            msg = DeviceMessage()
            msg.content = "hello from asyncio"
            assert isinstance(await client.report_device_message(msg), int)

            async def answer_commands():
                async with client.commands() as commands:
                    async for command in commands:
                        assert isinstance(command, CommandRequest)
                        await command.respond(CommandRsp(0, "done", {"echo": command.paras["n"]}))
                        return command.command_name

            async def answer_property_requests():
                sets, gets = client.property_sets(), client.property_gets()
                async with sets, gets:
                    req = await sets.__anext__()
                    assert isinstance(req, PropertySetRequest)
                    assert req.services[0].properties == {"alarm": 0}
                    await req.respond(IotResult(0, "written"))
                    get = await gets.__anext__()
                    assert isinstance(get, PropertyGetRequest) and get.service_id == "smokeDetector"
                    await get.respond([ServiceProperty("smokeDetector", {"alarm": 7})])

            async def first_message():
                async with client.messages() as messages:
                    async for message in messages:
                        return message

            commands_task = asyncio.create_task(answer_commands())
            props_task = asyncio.create_task(answer_property_requests())
            message_task = asyncio.create_task(first_message())
            await asyncio.sleep(0)  # the tasks open their streams before anything is sent
            rsp = await asyncio.to_thread(emulator.send_command, dev_id, "smokeDetector", "ring", {"n": 3})
            assert (rsp["result_code"], rsp["response_name"], rsp["paras"]) == (0, "done", {"echo": 3})
            assert await commands_task == "ring"
            answer = await asyncio.to_thread(emulator.set_properties, dev_id,
                                             [{"service_id": "smokeDetector", "properties": {"alarm": 0}}])
            assert answer["result_code"] == 0 and answer.get("result_desc") == "written"
            got = await asyncio.to_thread(emulator.get_properties, dev_id, "smokeDetector")
            assert got["services"][0]["properties"] == {"alarm": 7}
            await props_task
            await asyncio.to_thread(emulator.send_message, dev_id, "down", standard=True)
            message = await message_task
            assert message.to_device_message().content == "down"
            # every stream closed: the threaded listener slots are free again
            assert sync_listeners(device) == (None, None, None)
        assert not device.is_connected()

    run(main())


def test_wrong_secret_raises_refused_with_code(emulator):
    rec = emulator.create_device()

    async def main():
        device = new_device(emulator, {**rec, "secret": "not-the-secret"})
        with pytest.raises(ConnectRefusedError) as info:
            await device.connect()
        assert info.value.code == 4 and isinstance(info.value, IotDeviceError)
        assert not device.is_connected()
        # nothing retries behind the exception
        assert device.iot_device.get_client()._get_connection()._reconnect_thread is None
        await device.destroy()
        # the async with form raises the same and leaves nothing connected
        with pytest.raises(ConnectRefusedError):
            async with new_device(emulator, {**rec, "secret": "still-wrong"}):
                raise AssertionError("not reached")

    run(main())


def test_many_devices_one_loop_slow_handler_does_not_stall_others(emulator):
    """20 devices on one loop; device 0's command handler waits for the end of the test, the other 19
    (handlers and streams, commands and property reads) are answered meanwhile."""
    n = 20

    async def main():
        release = asyncio.Event()
        slow_started = asyncio.Event()
        devices = [new_device(emulator) for _ in range(n)]
        await asyncio.gather(*(d.connect() for d in devices))
        try:
            async def slow(command: CommandRequest):
                slow_started.set()
                await release.wait()
                return CommandRsp(0, "slow", {})

            async def quick(command: CommandRequest):
                await asyncio.sleep(0)
                return CommandRsp(0, "quick", {"device": command.paras["device"]})

            async def read(request: PropertyGetRequest):
                return [ServiceProperty("s", {"v": request.service_id})]

            devices[0].get_client().set_command_handler(slow)
            consumers = []
            for i, d in enumerate(devices[1:], start=1):
                if i % 2:
                    d.get_client().set_command_handler(quick)
                else:  # the other half answers from an async for loop
                    async def loop_answer(client=d.get_client()):
                        async for command in client.commands():
                            await command.respond(CommandRsp(0, "quick", {"device": command.paras["device"]}))
                    consumers.append(asyncio.create_task(loop_answer()))
                d.get_client().set_property_get_handler(read)
            await asyncio.sleep(0)
            ids = [d.get_device_id() for d in devices]
            slow_call = asyncio.create_task(asyncio.to_thread(emulator.send_command, ids[0], "s", "wait", {}))
            await slow_started.wait()
            answers = await asyncio.gather(*(
                asyncio.to_thread(emulator.send_command, ids[i], "s", "go", {"device": ids[i]}) for i in range(1, n)))
            gets = await asyncio.gather(*(asyncio.to_thread(emulator.get_properties, ids[i], "svc")
                                          for i in range(1, n)))
            # all answered while device 0's handler still waits
            assert not release.is_set() and not slow_call.done()
            assert [a["paras"]["device"] for a in answers] == ids[1:]
            assert all(a["response_name"] == "quick" for a in answers)
            assert all(g["services"][0]["properties"] == {"v": "svc"} for g in gets)
            release.set()
            slow_answer = await slow_call
            assert slow_answer["response_name"] == "slow"
        finally:
            await asyncio.gather(*(d.destroy() for d in devices))
        # destroy() ended the async for loops of the stream consumers
        done, pending = await asyncio.wait(consumers, timeout=10)
        assert not pending and all(t.exception() is None for t in done)

    run(main(), timeout=120)


def test_cancelled_stream_goes_back_to_services(emulator):
    async def main():
        async with new_device(emulator) as device:
            dev_id = device.get_device_id()
            device.iot_device.add_service("svc", Echo())
            client = device.get_client()
            started = asyncio.Event()

            async def consume():
                stream = client.commands()
                started.set()
                async for command in stream:
                    raise AssertionError(f"unexpected {command}")

            task = asyncio.create_task(consume())
            await started.wait()
            assert sync_listeners(device)[0] is not None
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            # the cancelled consumer released the slot: the service answers again
            assert sync_listeners(device)[0] is None
            rsp = await asyncio.to_thread(emulator.send_command, dev_id, "svc", "echo", {"x": 1})
            assert rsp["paras"] == {"from": "service", "x": 1}

            # a stream dropped without closing is cleaned up when collected
            client.property_sets()
            gc.collect()
            assert sync_listeners(device)[1] is None

            # one consumer per kind; a second is refused until the first is closed
            first = client.commands()
            with pytest.raises(RuntimeError):
                client.commands()
            await first.aclose()
            await client.commands().aclose()

            # a handler replaced by None: requests go back to the services
            async def never(command):
                raise AssertionError("handler was removed")
            client.set_command_handler(never)
            client.set_command_handler(None)
            await asyncio.sleep(0)
            rsp = await asyncio.to_thread(emulator.send_command, dev_id, "svc", "echo", {"x": 2})
            assert rsp["paras"] == {"from": "service", "x": 2}

    run(main())


def test_requests_queued_in_a_closing_stream_are_answered(emulator):
    """A stream closed with requests it never handed out gives them back: the services answer them."""
    async def main():
        async with new_device(emulator) as device:
            dev_id = device.get_device_id()
            device.iot_device.add_service("svc", Echo())
            stream = device.get_client().commands()
            call = asyncio.create_task(asyncio.to_thread(emulator.send_command, dev_id, "svc", "echo", {"q": 1}))
            while not stream._queue:  # the command arrived in the stream, nobody reads it
                await asyncio.sleep(0.01)
            stream.close()
            rsp = await call
            assert rsp["paras"] == {"from": "service", "q": 1}

    run(main())


def test_handler_failure_is_answered_with_an_error(emulator):
    async def main():
        async with new_device(emulator) as device:
            async def broken(command):
                raise ValueError("boom")
            device.get_client().set_command_handler(broken)
            rsp = await asyncio.to_thread(emulator.send_command, device.get_device_id(), "s", "c", {})
            assert rsp["result_code"] != 0

    run(main())


def test_destroy_ends_iterators(emulator):
    async def main():
        device = new_device(emulator)
        await device.connect()
        seen = []

        async def consume():
            async for message in device.get_client().messages():
                seen.append(message)
            return "ended"

        task = asyncio.create_task(consume())
        await asyncio.sleep(0)
        await device.destroy()
        assert await asyncio.wait_for(task, 10) == "ended"

    run(main())


def test_cancelled_publish_wait_leaves_no_callback():
    async def main():
        handle = PublishHandle("t")
        waiter = asyncio.create_task(_bridge.await_handle(handle))
        await asyncio.sleep(0)
        assert len(handle._callbacks or []) == 1
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert not handle._callbacks
        # a wait that times out raises the SDK's timeout error and cleans up the same way
        with pytest.raises(IotTimeoutError):
            await _bridge.await_handle(handle, timeout=0.01)
        assert not handle._callbacks
        # resolution after all that bothers nobody; a failure reaches the awaiting coroutine
        failing = PublishHandle("t2")
        pending = asyncio.create_task(_bridge.await_handle(failing))
        await asyncio.sleep(0)
        threading.Thread(target=failing._set_failure, args=(PublishError("closed", "gone"),)).start()
        with pytest.raises(PublishError):
            await pending
        handle._set_success(1)

    run(main())


def test_cancelled_connect_leaves_device_disconnected(emulator):
    """A server that accepts TCP but never answers CONNACK; cancelling the wait stops the attempt."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)
    rec = emulator.create_device()

    class Silent:
        host = "127.0.0.1"
        mqtt_port = silent.getsockname()[1]

    async def main():
        device = new_device(Silent, rec, timeout=30)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(device.connect(), 0.5)
        connection = device.iot_device.get_client()._get_connection()
        for _ in range(500):  # the close() started by the cancellation ends the attempt
            if not connection._is_connecting():
                break
            await asyncio.sleep(0.02)
        assert not connection._is_connecting() and not device.is_connected()
        await device.destroy()

    try:
        run(main())
    finally:
        silent.close()


def test_with_iot_device_connects_and_destroys(emulator):
    rec = emulator.create_device()
    with IotDevice(build_client_conf(emulator, rec)) as device:
        assert device.get_client().is_connected()
        device.get_client().report_properties([ServiceProperty("s", {"v": 1})]).result(10)
    assert not device.get_client().is_connected()
    with pytest.raises(RuntimeError):  # destroyed for good
        device.connect()
    with pytest.raises(ConnectRefusedError) as info:
        with IotDevice(build_client_conf(emulator, {**rec, "secret": "wrong"})):
            raise AssertionError("not reached")
    assert info.value.code == 4


def test_property_set_and_message_handlers(emulator):
    async def main():
        async with new_device(emulator) as device:
            dev_id = device.get_device_id()
            client = device.get_client()
            received = asyncio.Queue()

            async def refuse(request: PropertySetRequest):
                await asyncio.sleep(0)
                return IotResult(1, f"read-only: {sorted(request.services[0].properties)}")

            async def on_message(message):
                await received.put(message.payload)

            client.set_property_set_handler(refuse)
            client.set_message_handler(on_message)
            answer = await asyncio.to_thread(emulator.set_properties, dev_id,
                                             [{"service_id": "s", "properties": {"b": 1, "a": 2}}])
            assert (answer["result_code"], answer["result_desc"]) == (1, "read-only: ['a', 'b']")
            await asyncio.to_thread(emulator.send_message, dev_id, b"\x00\x01binary")
            assert await asyncio.wait_for(received.get(), 10) == b"\x00\x01binary"
            assert all(sync_listeners(device)[1:])
        # destroy ended the handlers: the slots are free again
        assert sync_listeners(device) == (None, None, None)

    run(main())
