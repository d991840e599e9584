"""A test device that runs under MicroPython (not CPython): the SDK's IotClient driven from argv.

Usage: micropython mp_device.py host=H port=P device_id=D secret=S [ca_file=F] [server_hostname=N]
       [mode=loop|thread] [subscribe=1|0] [verbose=0|1] [max_packet=N] [user_topic=NAME]

It reports one message and one property set at start, answers commands (echoing ``level`` as ``applied``),
keeps written properties and returns them on a property get, and prints one line per event for the test
to read: READY, CONNECTED n, LOST, COMMAND, SET, GET, DOWN <content>, USER <topic> <payload>, STATS,
REFUSED <code>, ERROR <exc>.
Messages down with content "bye" stop it, "stats" prints heap figures, "report" reports again, "gcoff" and
"gcon" print the bytes allocated between them (GARBAGE n), "echo TEXT" publishes TEXT as a message up.
"""
import sys
import gc
import json
import time

from iot_device_sdk_micropython.client import IotClient, IotClientConfig
from iot_device_sdk_micropython.client.request import ServicesProperties

args = {}
for item in sys.argv[1:]:
    key, _, value = item.partition("=")
    args[key] = value

cfg = IotClientConfig(server_ip=args["host"], device_id=args["device_id"], secret=args["secret"],
                      port=int(args["port"]), ca_file=args.get("ca_file"),
                      server_hostname=args.get("server_hostname"),
                      subscribe_system_topics=args.get("subscribe", "1") == "1",
                      reconnect_min_ms=200, reconnect_max_ms=2000, keepalive=30,
                      max_packet=int(args.get("max_packet", "16384")),
                      verbose=args.get("verbose", "0") == "1")
props = {"Sensor": {"temperature": 21.5}}
state = {"stop": False}

try:
    client = IotClient(cfg)
except Exception as err:
    print("ERROR", repr(err))
    sys.exit(3)


def on_command(request_id, command):
    print("COMMAND", command.service_id, command.command_name, json.dumps(command.paras))
    level = command.paras.get("level") if isinstance(command.paras, dict) else None
    client.respond_command(request_id, 0, "set_level_result", {"applied": level})


def on_set(request_id, services):
    for service in services:
        props.setdefault(service["service_id"], {}).update(service["properties"])
    print("SET", json.dumps(services))
    client.respond_property_set(request_id, 0, "applied")


def on_get(request_id, service_id):
    print("GET", service_id)
    answer = ServicesProperties()
    for sid in props:
        if service_id in (None, sid):
            for name in props[sid]:
                answer.add_service_property(sid, name, props[sid][name])
    client.respond_property_get(request_id, answer)


def report():
    client.publish_message("hello from micropython")
    client.report_properties([{"service_id": "Sensor", "properties": props["Sensor"]}])


def on_message(message):
    print("DOWN", message.content)
    if message.content == "bye":
        state["stop"] = True
    elif message.content == "stats":
        gc.collect()
        print("STATS", gc.mem_alloc(), gc.mem_free(), client.dropped)
    elif message.content == "gcoff":     # measuring what handling messages allocates
        gc.collect()
        gc.disable()
        state["base"] = gc.mem_alloc()
        print("GCOFF")
    elif message.content == "gcon":
        used = gc.mem_alloc() - state["base"]
        gc.enable()
        print("GARBAGE", used)
    elif isinstance(message.content, str) and message.content.startswith("echo "):
        client.publish_message(message.content[5:])
        print("ECHOED")
    elif message.content == "report":
        report()
        print("REPORTED")


client.set_command_callback(on_command)
client.set_property_set_callback(on_set)
client.set_property_get_callback(on_get)
client.set_device_message_callback(on_message)
client.set_user_topic_message_callback(lambda topic, payload: print("USER", topic, payload))
if args.get("user_topic"):
    client.subscribe("$oc/devices/" + args["device_id"] + "/user/" + args["user_topic"])
client.set_connect_callback(lambda: print("CONNECTED", client.connect_count))
client.set_disconnect_callback(lambda reason: print("LOST", repr(reason)))

try:
    client.connect()
except Exception as err:
    code = err.args[0] if err.args else None
    if type(err).__name__ == "MQTTException":
        print("REFUSED", code)
        sys.exit(2)
    print("ERROR", repr(err))
    sys.exit(3)

report()
print("READY", client.mqtt_impl)
if args.get("mode") == "thread":
    client.start()
    while not state["stop"]:
        time.sleep_ms(50)
else:
    while not state["stop"]:
        client.loop(100)
client.close()
print("BYE")
