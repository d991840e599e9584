#!/bin/sh
# Make sure a Mosquitto broker binary is available (the emulator runs it as a subprocess).
# Debian/Ubuntu: apt-get; macOS: brew. Anything else: a clear message and exit 1.
set -e
found() {
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || [ -x /usr/local/sbin/mosquitto ] \
        || [ -x /opt/homebrew/sbin/mosquitto ]
}
if found; then exit 0; fi
if command -v apt-get >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" != "0" ]; then SUDO="sudo"; fi
    echo "Installing Mosquitto with apt-get..."
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
    # The Debian package may start a system broker on 1883; the emulator never uses it.
elif command -v brew >/dev/null 2>&1; then
    echo "Installing Mosquitto with Homebrew..."
    brew install mosquitto
else
    echo "Mosquitto is missing and neither apt-get nor brew is available." >&2
    echo "Install the 'mosquitto' broker (https://mosquitto.org/download/) and run make again." >&2
    exit 1
fi
found || { echo "Mosquitto was installed but its binary was not found" >&2; exit 1; }
