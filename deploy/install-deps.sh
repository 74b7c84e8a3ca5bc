#!/usr/bin/env bash
# Installs the system packages farm needs (libav* headers, ffmpeg/ffprobe, PostgreSQL server), and those its tests
# drive as real clients (Chromium plays the HLS output; python3-venv holds the m3u8 parser, see deploy/python-env.sh).
# Idempotent and quiet when everything is already there. Arguments are more packages for one use: `make bench`
# adds linux-perf, which profiles the coordinator in the scale figure.
set -euo pipefail

packages=(
    pkg-config
    libavcodec-dev libavformat-dev libswscale-dev libavutil-dev libswresample-dev libavfilter-dev libva-dev
    ffmpeg
    postgresql
    chromium
    python3 python3-venv
    "$@"
)

missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

echo "farm: installing system packages: ${missing[*]}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
