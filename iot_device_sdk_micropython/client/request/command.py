"""A command from the platform (``$oc/devices/{id}/sys/commands/request_id={request_id}``)."""


class Command:
    """Fields of a command request: ``service_id``, ``command_name``, ``paras`` and, for gateways,
    ``device_id`` (the payload's ``object_device_id``). Missing fields are None."""

    def __init__(self, command_dict=None) -> None:
        d = command_dict if isinstance(command_dict, dict) else {}
        self.device_id = d.get("object_device_id")
        self.service_id = d.get("service_id")
        self.command_name = d.get("command_name")
        self.paras = d.get("paras")
