"""Transfer progress and real cancellation (OTA downloads, file uploads and downloads) on the emulator.

Cancellation is driven from the progress callback itself (cancel once a few chunks went through), so the
tests observe a transfer stopped mid-stream without any timing assumption.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading

import pytest

from iot_device_sdk_python.ota.ota_listener import OTAListener
from iot_device_sdk_python.transfer.transfer_future import TransferFuture

SIZE = 2 * 1024 * 1024 + 77          # 33 download chunks of 64 KiB, 129 upload blocks of 16 KiB
CUT_AT = 256 * 1024                  # cancel once this many bytes went through


class Progress:
    """Records ``(done, total)`` calls; cancels ``future`` once ``cancel_at`` bytes are done."""

    def __init__(self, cancel_at=None):
        self.calls = []
        self.cancel_at = cancel_at
        self.future = None
        self.ready = threading.Event()   # the future is known (set right after the call that made it)
        self.cancel_result = None

    def __call__(self, done, total):
        self.calls.append((done, total))
        if self.cancel_at is not None and done >= self.cancel_at and self.cancel_result is None:
            assert self.ready.wait(10)
            self.cancel_result = self.future.cancel()

    def attach(self, future):
        self.future = future
        self.ready.set()
        return future

    def check_monotonic(self):
        dones = [d for d, _ in self.calls]
        assert dones == sorted(dones) and len(set(dones)) == len(dones)


class Downloader(OTAListener):
    """Starts one download per package with a progress recorder."""

    def __init__(self, device, target_dir, ca_file, progress):
        self.ota = device.get_ota_service()
        self.target_dir, self.ca_file, self.progress = target_dir, ca_file, progress
        self.started = threading.Event()

    def on_query_version(self, query_info):
        self.ota.report_version(fw_version="1.0")

    def on_receive_package_info(self, pkg):
        self.progress.attach(self.ota.download_package(pkg, self.target_dir, self.ca_file, timeout=10,
                                                       progress=self.progress))
        self.started.set()


@pytest.fixture
def ota_download(emulator, make_device, tmp_path):
    """``start(progress) -> (future, dir)``: an OTA task on a fresh device with a package of SIZE bytes."""
    def start(progress):
        device = make_device(emulator)
        target = tmp_path / "pkgs"
        listener = Downloader(device, str(target), emulator.ca_file, progress)
        device.get_ota_service().set_ota_listener(listener)
        svc = emulator.service("$ota")
        package_id = svc.upload_package(os.urandom(SIZE), "9.0", file_name="fw.bin")
        svc.start_task(device.get_device_id(), package_id, v2=True)
        assert listener.started.wait(30)
        return progress.future, target
    return start


def test_ota_download_reports_progress(ota_download):
    progress = Progress()
    future, target = ota_download(progress)
    path = future.result(60)
    assert isinstance(future, TransferFuture) and not future.running()
    assert os.path.getsize(path) == SIZE and os.listdir(target) == ["fw.bin"]
    assert len(progress.calls) >= 3
    progress.check_monotonic()
    assert progress.calls[-1] == (SIZE, SIZE)
    assert all(total == SIZE for _, total in progress.calls)


def test_ota_download_cancelled_mid_stream(ota_download):
    progress = Progress(cancel_at=CUT_AT)
    future, target = ota_download(progress)
    assert future.wait_finished(60)
    assert progress.cancel_result is True
    assert future.cancelled() and future.done()
    with pytest.raises(concurrent.futures.CancelledError):
        future.result(0)
    # stopped mid-stream: the last chunk seen is far from the end, and nothing is left on disk
    assert CUT_AT <= progress.calls[-1][0] < SIZE
    assert os.listdir(target) == []
    # waiters of concurrent.futures see it finished
    done, _ = concurrent.futures.wait([future], timeout=5)
    assert future in done


@pytest.fixture
def fm_env(emulator, make_device):
    device = make_device(emulator)
    return device, device.get_file_manager_service(), emulator.service("$file_manager")


def test_file_upload_and_download_report_progress(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    data = os.urandom(SIZE)
    src = tmp_path / "big.bin"
    src.write_bytes(data)
    up = Progress()
    up.attach(fms.transfer_upload("big.bin", str(src), ca_file=emulator.ca_file, progress=up)).result(60)
    assert emu_fm.get_file(dev_id, "big.bin") == data
    assert len(up.calls) >= 3 and up.calls[-1] == (SIZE, SIZE)
    up.check_monotonic()
    down = Progress()
    dst = tmp_path / "down" / "big.bin"
    res = down.attach(fms.transfer_download("big.bin", str(dst), ca_file=emulator.ca_file,
                                            progress=down)).result(60)
    assert dst.read_bytes() == data and res.size == SIZE
    assert len(down.calls) >= 3 and down.calls[-1] == (SIZE, SIZE)
    down.check_monotonic()


def test_file_download_cancelled_mid_stream(fm_env, emulator, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    emu_fm.put_file(dev_id, "big.bin", os.urandom(SIZE))
    progress = Progress(cancel_at=CUT_AT)
    dst_dir = tmp_path / "down"
    future = progress.attach(fms.transfer_download("big.bin", str(dst_dir / "big.bin"), ca_file=emulator.ca_file,
                                                   progress=progress))
    assert future.wait_finished(60)
    assert progress.cancel_result is True and future.cancelled()
    assert CUT_AT <= progress.calls[-1][0] < SIZE
    assert os.listdir(dst_dir) == []          # neither the file nor its .part
    # the platform heard that the transfer did not happen
    rep = emu_fm.wait_result(dev_id, "download", "big.bin")
    assert rep["result_code"] == 1
    # a download cut short by the client is no error on either side, and no log line shows the presigned URL
    assert not [r for r in caplog.records if "X-Signature" in r.getMessage() or r.levelno >= logging.ERROR]


def test_file_upload_cancelled_mid_body(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    src = tmp_path / "big.bin"
    src.write_bytes(os.urandom(SIZE))
    progress = Progress(cancel_at=CUT_AT)
    future = progress.attach(fms.transfer_upload("big.bin", str(src), ca_file=emulator.ca_file, progress=progress))
    assert future.wait_finished(60)
    assert progress.cancel_result is True and future.cancelled()
    assert CUT_AT <= progress.calls[-1][0] < SIZE
    assert emu_fm.wait_result(dev_id, "upload", "big.bin")["result_code"] == 1
    assert emu_fm.get_file(dev_id, "big.bin") is None
    assert src.exists()                       # the source file is the application's, never removed


def test_cancel_while_waiting_for_the_url(fm_env, emulator, tmp_path):
    """Cancelled before any byte moved: the pending request is forgotten at once."""
    device, fms, emu_fm = fm_env
    emulator.pause(device.get_device_id())    # the URL request goes nowhere
    try:
        future = fms.transfer_download("x.bin", str(tmp_path / "x.bin"), ca_file=emulator.ca_file)
        assert future.cancel() and future.cancelled()
        assert fms._pending == []
    finally:
        emulator.resume(device.get_device_id())


def test_asyncio_cancel_of_a_wrapped_transfer_stops_it(fm_env, emulator, tmp_path):
    """``asyncio.wrap_future``: cancelling the awaiting task cancels the transfer itself."""
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    emu_fm.put_file(dev_id, "big.bin", os.urandom(SIZE))
    dst_dir = tmp_path / "down"

    async def main():
        loop = asyncio.get_running_loop()
        halfway = asyncio.Event()
        settled = threading.Event()

        def progress(done, total):
            if done >= CUT_AT and not settled.is_set():
                loop.call_soon_threadsafe(halfway.set)
                assert settled.wait(10)   # hold the transfer until the cancellation reached the future

        future = fms.transfer_download("big.bin", str(dst_dir / "big.bin"), ca_file=emulator.ca_file,
                                       progress=progress)
        future.add_done_callback(lambda f: settled.set())
        task = asyncio.ensure_future(asyncio.wrap_future(future))
        await halfway.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return future

    future = asyncio.run(asyncio.wait_for(main(), 60))
    assert future.cancelled() and future.wait_finished(30)
    assert not any(dst_dir.iterdir())



# ---- no cancel() leaves a waiter hanging ------------------------------------------------------------------

def _ended_for_every_waiter(future):
    """``wait_finished``, ``concurrent.futures.wait`` and ``as_completed`` all see the future end."""
    assert future.wait_finished(5)
    done, _ = concurrent.futures.wait([future], timeout=5)
    assert future in done
    assert list(concurrent.futures.as_completed([future], timeout=5)) == [future]


@pytest.mark.parametrize("when", ["before-start", "twice", "before-commit", "while-abandoned"])
def test_a_cancelled_transfer_future_ends_for_every_waiter(when):
    """The worker-side calls in every order a cancel can meet them: no RuntimeError from a second
    ``set_running_or_notify_cancel``, and a waiter that started waiting before the cancel is woken."""
    future = TransferFuture()
    waiting = concurrent.futures.ThreadPoolExecutor(1)
    try:
        early = waiting.submit(concurrent.futures.wait, [future], 30)   # waits from before the cancel
        assert future.cancel()
        if when == "twice":
            assert future.cancel()
        if when == "while-abandoned":      # no worker will ever run it
            future._abandon()
            future._abandon()
        else:
            future._start()
            if when == "before-commit":
                assert future._commit() is False      # the cancel won: the worker must undo
            assert future._finish(exc=RuntimeError("stopped")) is False
            assert future._finish("late") is False
        assert not future.running()
        assert future in early.result(10).done
        _ended_for_every_waiter(future)
        with pytest.raises(concurrent.futures.CancelledError):
            future.result(0)
    finally:
        waiting.shutdown()


def test_a_committed_transfer_can_no_longer_be_cancelled():
    future = TransferFuture()
    future._start()
    assert future.running() and future._commit() and future._commit()
    assert future.cancel() is False and not future.cancelled()
    assert future._finish("the file") is True
    assert future.cancel() is False            # after done, too
    assert future.result(0) == "the file"
    _ended_for_every_waiter(future)


def test_file_upload_cancelled_at_its_last_block_is_not_reported_as_a_success(fm_env, emulator, tmp_path):
    device, fms, emu_fm = fm_env
    dev_id = device.get_device_id()
    src = tmp_path / "small.bin"
    src.write_bytes(os.urandom(1000))         # one block: its progress call is the last one
    progress = Progress(cancel_at=1)
    future = progress.attach(fms.transfer_upload("small.bin", str(src), ca_file=emulator.ca_file, progress=progress))
    assert future.wait_finished(60)
    assert progress.cancel_result is True and future.cancelled()
    assert emu_fm.wait_result(dev_id, "upload", "small.bin")["result_code"] != 0
    _ended_for_every_waiter(future)
    assert src.exists()


def test_ota_download_cancelled_at_its_last_chunk_keeps_the_previous_file(emulator, make_device, tmp_path):
    """Cancelled from its last progress call: the package never replaces the file that was there."""
    device = make_device(emulator)
    target = tmp_path / "pkgs"
    target.mkdir()
    (target / "fw.bin").write_bytes(b"the installed package")
    progress = Progress(cancel_at=1)
    listener = Downloader(device, str(target), emulator.ca_file, progress)
    device.get_ota_service().set_ota_listener(listener)
    svc = emulator.service("$ota")
    package_id = svc.upload_package(os.urandom(1000), "9.1", file_name="fw.bin")   # one chunk
    svc.start_task(device.get_device_id(), package_id, v2=True)
    assert listener.started.wait(30)
    future = progress.future
    assert future.wait_finished(60)
    assert progress.cancel_result is True and future.cancelled()
    _ended_for_every_waiter(future)
    assert sorted(os.listdir(target)) == ["fw.bin"]
    assert (target / "fw.bin").read_bytes() == b"the installed package"


def test_destroy_while_transfers_wait_for_their_urls_ends_them_all(emulator, make_device, tmp_path):
    """One transfer cancelled while waiting, one still waiting when the device is destroyed: both end."""
    from iot_device_sdk_python.filemanager.file_manager_service import FileTransferError

    device = make_device(emulator)
    fms = device.get_file_manager_service()
    emulator.pause(device.get_device_id())    # the URL requests go nowhere
    try:
        cancelled = fms.transfer_download("a.bin", str(tmp_path / "a.bin"), ca_file=emulator.ca_file)
        waiting = fms.transfer_download("b.bin", str(tmp_path / "b.bin"), ca_file=emulator.ca_file)
        assert cancelled.cancel()
        _ended_for_every_waiter(cancelled)
        assert not waiting.done()
        device.destroy()
        _ended_for_every_waiter(waiting)
        with pytest.raises(FileTransferError) as err:
            waiting.result(0)
        assert err.value.kind == "cancelled"
        assert waiting.cancel() is False and cancelled.cancel() is True   # after the end: nothing changes
        _ended_for_every_waiter(cancelled)
    finally:
        emulator.resume(device.get_device_id())
    assert not (tmp_path / "a.bin").exists() and not (tmp_path / "b.bin").exists()
