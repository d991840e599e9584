"""One TCP child connection and the text protocol spoken on it.

Protocol: UTF-8 lines ending in ``\\n`` (a trailing ``\\r`` is ignored), at most 64 KB per line.

Child -> gateway (each answered with one ``OK ...`` or ``ERR <reason>`` line)::

    LOGIN <node_id>              log in; an unknown node is first added to the platform (reply
                                 "OK adding <node_id>", then "OK online <device_id>" once created)
    MSG <text>                   report a message for this child
    PROPS <json>                 report properties: {"service_id": ..., "properties": {...}} or a list of them
    CMDRSP <request_id> <json>   answer a command: {"result_code": 0, "response_name": "...", "paras": {...}}
    SETRSP <request_id> <json>   answer a property set: {"result_code": 0, "result_desc": "..."}
    GETRSP <request_id> <json>   answer a property query: [{"service_id": ..., "properties": {...}}]
    DEL                          delete this child on the platform (reply "OK deleting", then "BYE deleted")
    PING                         "OK pong"
    QUIT                         "OK bye", child reported offline, connection closed

Gateway -> child (pushed at any time, one line each)::

    CMD <request_id> <json>      a command {"service_id", "command_name", "paras"}; answer with CMDRSP
    SET <request_id> <json>      a property set [{"service_id", "properties"}]; answer with SETRSP
    GET <request_id> <json>      a property query {"service_id": ... or null}; answer with GETRSP
    MSG <json>                   a message {"id", "name", "content"}
    EVT <json>                   an event for this child {"service_id", "event_type", "paras", ...}
    OK online <device_id>        the pending login completed
    ERR <reason>                 e.g. the platform refused to add the child
    BYE <reason>                 the session ended (deleted, replaced by a newer connection)

A request the child does not answer within the gateway's timeout is answered with an error for it.
"""
from __future__ import annotations

import logging
from typing import Optional

from tornado.iostream import IOStream, StreamClosedError

_logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 64 * 1024


class Session:
    """A connected child: its TCP stream and, once logged in, its node id and platform device id.

    Every method must be called on the Tornado IOLoop thread (streams are not thread-safe).
    """

    _next_id = 0

    def __init__(self, stream: IOStream, address: object = None) -> None:
        Session._next_id += 1
        self.session_id = Session._next_id
        self.stream = stream
        self.address = address
        self.node_id: Optional[str] = None      # set once LOGIN completed
        self.device_id: Optional[str] = None
        self.pending_node_id: Optional[str] = None   # LOGIN waiting for the platform to add the child
        self.fw_version = "v1.0"
        self.sw_version = "v1.0"

    @property
    def closed(self) -> bool:
        return self.stream.closed()

    def write_line(self, text: str) -> None:
        """Queue one line on the stream; a closed stream is ignored (the child went away)."""
        if self.stream.closed():
            return
        data = text.replace("\r", " ").replace("\n", " ").encode("utf-8") + b"\n"
        try:
            fut = self.stream.write(data)
        except StreamClosedError:
            return
        # consume the write future's error so a peer that vanished does not log "never retrieved"
        fut.add_done_callback(lambda f: f.exception())

    def close(self) -> None:
        if not self.stream.closed():
            self.stream.close()

    def __repr__(self) -> str:
        return f"Session(#{self.session_id}, node_id={self.node_id!r}, device_id={self.device_id!r})"
