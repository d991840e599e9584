"""A device message, up (``messages/up``) or down (``messages/down``), in IoTDA's system format."""


class DeviceMessage:
    """``content`` plus the optional ``id``, ``name`` and ``device_id`` (``object_device_id``).

    Built from a decoded system-format dict; a message that was not a JSON object keeps its text (or
    bytes, when not UTF-8) as ``content``.
    """

    def __init__(self, message=None) -> None:
        self.device_id = None
        self.id = None
        self.name = None
        self.content = None
        if isinstance(message, dict):
            self.device_id = message.get("object_device_id")
            self.id = message.get("id")
            self.name = message.get("name")
            self.content = message.get("content")
        elif message is not None:
            self.content = message

    def to_dict(self) -> dict:
        """The system-format dict to publish (fields that are None are left out)."""
        out = {"content": self.content}
        if self.device_id is not None:
            out["object_device_id"] = self.device_id
        if self.id is not None:
            out["id"] = self.id
        if self.name is not None:
            out["name"] = self.name
        return out
