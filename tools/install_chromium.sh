#!/usr/bin/env bash
# Install Debian's headless-capable Chromium (/usr/bin/chromium) for the docs test, when missing.
# `make test` runs this; it needs root (CI and the dev machines run as root) or sudo.
# Playwright's own browser download cannot work on this closed network: Debian's package can.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
    exit 0
fi
if [ "$(id -u)" -eq 0 ]; then
    SUDO=()
elif command -v sudo >/dev/null 2>&1; then
    SUDO=(sudo -n)
else
    echo "install_chromium: /usr/bin/chromium is missing and this user cannot install it;" \
        "run 'apt-get install chromium' as root" >&2
    exit 1
fi
echo "install_chromium: installing Debian's chromium package (once)"
export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
test -x /usr/bin/chromium
echo "install_chromium: $(/usr/bin/chromium --version 2>/dev/null || echo chromium installed)"
