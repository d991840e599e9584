"""Remote login tunnels (``$tunnel_manager``): the platform asks, the device pipes a WebSocket to a local port."""
