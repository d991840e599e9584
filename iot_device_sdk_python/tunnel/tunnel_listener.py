"""``TunnelListener``: optional callbacks of :class:`~iot_device_sdk_python.tunnel.tunnel_service.TunnelService`."""
from __future__ import annotations


class TunnelListener:
    """Subclass and override what you need; every method has a harmless default.

    Callbacks run on SDK threads (the dispatcher for :meth:`on_tunnel_request`, the tunnel's own thread for the
    others): keep them short and never raise.
    """

    def on_tunnel_request(self, tunnel_id: str, expires_in: int) -> bool:
        """The platform asks to open tunnel ``tunnel_id``; return False to refuse it (default: accept).

        Called only when tunnels are enabled (``enable_tunnel``)."""
        return True

    def on_tunnel_opened(self, tunnel_id: str) -> None:
        """The device side of the tunnel is connected to the platform's relay."""

    def on_session_started(self, tunnel_id: str, port: int) -> None:
        """A remote client was connected to local ``port`` through the tunnel."""

    def on_tunnel_closed(self, tunnel_id: str, reason: str) -> None:
        """The tunnel ended (closed by the platform, refused, failed, or closed by the device)."""
