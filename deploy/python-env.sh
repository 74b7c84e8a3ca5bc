#!/usr/bin/env bash
# Creates (once) the Python virtual environment the player tests run their scripts with, holding the pinned
# packages of Tests/players/requirements.txt, and prints its python's path. Quick when already up to date.
#
#   deploy/python-env.sh [VENV_DIR]    (default: .build/pyenv)
set -euo pipefail
cd "$(dirname "$0")/.."

venv=${1:-.build/pyenv}
case "$venv" in /*) ;; *) venv="$PWD/$venv" ;; esac
requirements=Tests/players/requirements.txt
python=$(command -v /usr/bin/python3 || command -v python3) || {
    echo "python-env.sh: python3 is not installed (run make deps)" >&2
    exit 1
}

if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$venv/farm-requirements.txt"; then
    echo "$venv/bin/python"
    exit 0
fi

echo "python-env.sh: creating $venv with $(tr '\n' ' ' <"$requirements")" >&2
rm -rf "$venv"
"$python" -m venv "$venv" >&2
"$venv/bin/pip" install --quiet --disable-pip-version-check --requirement "$requirements" >&2
cp "$requirements" "$venv/farm-requirements.txt"
echo "$venv/bin/python"
