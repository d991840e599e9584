"""The IoTDA wire protocol in one place: topic strings (``topics``) and JSON/time helpers (``codec``).

Both the SDK and the emulator import from here, so a topic or a time format is written once.
"""
