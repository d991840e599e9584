#!/bin/sh
# System packages the project needs beyond Python:
#   - Mosquitto (required: the emulator runs it as a subprocess), from apt-get or brew;
#   - Chromium + ChromeDriver (optional: only the web-console browser test uses them; it says why it skips).
set -e
has_mosquitto() {
    command -v mosquitto >/dev/null 2>&1 || [ -x /usr/sbin/mosquitto ] || [ -x /usr/local/sbin/mosquitto ] \
        || [ -x /opt/homebrew/sbin/mosquitto ]
}
SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

if ! has_mosquitto; then
    if command -v apt-get >/dev/null 2>&1; then
        echo "Installing Mosquitto with apt-get..."
        $SUDO apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mosquitto >/dev/null
    elif command -v brew >/dev/null 2>&1; then
        echo "Installing Mosquitto with Homebrew..."
        brew install mosquitto
    else
        echo "Mosquitto is missing and neither apt-get nor brew is available." >&2
        echo "Install the 'mosquitto' broker (https://mosquitto.org/download/) and run make again." >&2
        exit 1
    fi
    has_mosquitto || { echo "Mosquitto was installed but its binary was not found" >&2; exit 1; }
fi

if [ ! -x /usr/bin/chromedriver ] && command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = "0" ]; then
    echo "Installing Chromium and ChromeDriver for the browser test (best effort)..."
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
        || echo "Could not install chromium/chromium-driver: the browser test will be skipped." >&2
fi
exit 0
