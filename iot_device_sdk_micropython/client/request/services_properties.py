"""Services and their properties, as reported on ``properties/report`` or answered to a property get."""


class ServicesProperties:
    """Collects ``{"service_id", "properties"}`` entries; adding to a service already present merges."""

    def __init__(self) -> None:
        self.__services = []

    def add_service_property(self, service_id: str, property: str, value) -> None:
        """Set ``property`` = ``value`` in service ``service_id``."""
        for service in self.__services:
            if service["service_id"] == service_id:
                service["properties"][property] = value
                return
        self.__services.append({"service_id": service_id, "properties": {property: value}})

    @property
    def service_property(self) -> list:
        """The list of service dicts (what ``IotClient.report_properties`` sends)."""
        return self.__services

    def clear(self) -> None:
        """Forget every entry (reuse the object for the next report)."""
        del self.__services[:]
