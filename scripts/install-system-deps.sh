#!/usr/bin/env bash
# The system packages h4tracks' GUI tests need (a virtual X screen and the OpenGL / Qt xcb
# libraries napari draws with). Installs the missing ones with apt when run as root or with
# password-less sudo; otherwise prints exactly what to install and exits 1. Does nothing, in
# well under a second, when everything is there. Called by the README's test command.
set -euo pipefail

PACKAGES="xvfb xauth libgl1 libgl1-mesa-dri libegl1 libglib2.0-0 libfontconfig1 libdbus-1-3
 libxkbcommon-x11-0 libx11-xcb1 libxcb-icccm4 libxcb-image0 libxcb-keysyms1 libxcb-randr0
 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0 libxcb-cursor0"

if ! command -v dpkg-query >/dev/null 2>&1; then
    # not Debian/Ubuntu: only say what is needed
    if command -v xvfb-run >/dev/null 2>&1; then exit 0; fi
    echo "h4tracks: the GUI tests need Xvfb (xvfb-run) and the OpenGL and Qt xcb libraries;" \
         "install your system's packages for: $PACKAGES" >&2
    exit 1
fi

missing=""
for pkg in $PACKAGES; do
    status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
    case "$status" in *"install ok installed"*) ;; *) missing="$missing $pkg" ;; esac
done
if [ -z "$missing" ]; then exit 0; fi

echo "h4tracks: installing the system packages the GUI tests need:$missing" >&2
if [ "$(id -u)" = 0 ]; then
    SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    SUDO="sudo -n"
else
    echo "h4tracks: cannot install them without root; run:" \
         "sudo apt-get install -y --no-install-recommends$missing" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "h4tracks: system packages installed" >&2
