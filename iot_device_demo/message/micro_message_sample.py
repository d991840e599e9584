"""MicroPython demo (runs on a board such as an ESP32, or the MicroPython unix port; not on CPython).

Put ``iot_device_sdk_micropython/`` and this file on the board (README.md, section "MicroPython"), fill in
the five settings below and run it. It reports a message and, every REPORT_EVERY_S seconds, the
"Agriculture" properties; it answers commands, property set/get and prints messages the platform sends.

The board's clock must be right for the password's hour stamp when CHECK_TIMESTAMP is True (on a board:
``import ntptime; ntptime.settime()`` after joining the Wi-Fi); with False the platform does not check it.
"""
import time

from iot_device_sdk_micropython.client import IotClient, IotClientConfig
from iot_device_sdk_micropython.client.request import ServicesProperties

# ---- replace with your own (console: "Access Details" and the device's page) ----------------------
SERVER_ADDRESS = "iot-mqtts.cn-north-4.myhuaweicloud.com"
PORT = 8883                      # 8883 = MQTTS (needs CA_FILE); 1883 = plain MQTT
DEVICE_ID = "your device id"
SECRET = "your device secret"
CA_FILE = "root.pem"             # IoTDA's root CA (PEM or DER) copied to the board; None for port 1883
# -----------------------------------------------------------------------------------------------------
CHECK_TIMESTAMP = False
REPORT_EVERY_S = 10

lights = {"LightStatus": "OFF"}


def main():
    config = IotClientConfig(server_ip=SERVER_ADDRESS, device_id=DEVICE_ID, secret=SECRET, port=PORT,
                             ca_file=CA_FILE, check_timestamp=CHECK_TIMESTAMP)
    client = IotClient(config)

    def on_command(request_id, command):
        print("command:", command.service_id, command.command_name, command.paras)
        client.respond_command(request_id, 0, paras={"result": "success"})

    def on_message(message):
        print("message from the platform: id =", message.id, "name =", message.name, "content =", message.content)

    def on_property_set(request_id, services):
        for service in services:
            if service.get("service_id") == "Agriculture":
                lights.update(service.get("properties", {}))
        print("properties written:", services)
        client.respond_property_set(request_id, 0, "success")

    def on_property_get(request_id, service_id):
        answer = ServicesProperties()
        answer.add_service_property("Agriculture", "LightStatus", lights["LightStatus"])
        client.respond_property_get(request_id, answer)

    client.set_command_callback(on_command)
    client.set_device_message_callback(on_message)
    client.set_property_set_callback(on_property_set)
    client.set_property_get_callback(on_property_get)
    client.connect()
    print("connected")
    client.publish_message("raw message: Hello Huawei cloud IoT")

    report = ServicesProperties()   # one object reused for every report
    next_report = time.time()
    while True:
        client.loop(200)            # receive, answer, keep alive, reconnect when needed
        now = time.time()
        if now < next_report:
            continue
        next_report = now + REPORT_EVERY_S
        report.clear()
        report.add_service_property("Agriculture", "Temperature", int(now) % 25)
        report.add_service_property("Agriculture", "Humidity", int(now) % 35)
        report.add_service_property("Agriculture", "LightStatus", lights["LightStatus"])
        try:
            client.report_properties(report)
            print("properties reported")
        except OSError as err:      # link down: loop() reconnects, the next round reports again
            print("report failed:", err)


if __name__ == "__main__":   # on a board: save as main.py, or `import micro_message_sample` then call main()
    main()
