#!/usr/bin/env bash
# Installs the Debian packages the test suite starts, when they are missing: chromium (the
# dashboard test drives it) and prometheus (fleet mode scrapes through it). Run by `make test`.
#
# - both present: prints nothing, exits 0;
# - missing, running as root: apt-get update + install --no-install-recommends;
# - missing, sudo works without a password (`sudo -n true`): the same through sudo;
# - otherwise: prints the one command to run and exits 1 at once (never prompts).
#
# The paths checked can be overridden: CHROMIUM_PATH (as the dashboard test reads it, default
# /usr/bin/chromium) and PROMETHEUS_PATH (default: `prometheus` on PATH, else /usr/bin/prometheus).
# Uses only bash builtins until it installs, so it runs with any PATH.
set -euo pipefail

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
prometheus="${PROMETHEUS_PATH:-$(command -v prometheus || echo /usr/bin/prometheus)}"

need=()
[ -x "$chromium" ] || need+=(chromium)
[ -x "$prometheus" ] || need+=(prometheus)
[ "${#need[@]}" -eq 0 ] && exit 0

install="apt-get install -y -q --no-install-recommends ${need[*]}"
echo "ensure-system-deps: the tests need ${need[*]} (checked $chromium, $prometheus)" >&2

if ! command -v apt-get >/dev/null 2>&1; then
    echo "ensure-system-deps: no apt-get here: install ${need[*]} with your package manager," \
        "or point CHROMIUM_PATH / PROMETHEUS_PATH at them" >&2
    exit 1
fi

if [ "$EUID" -eq 0 ]; then
    run=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    run=(sudo -n)
else
    if command -v sudo >/dev/null 2>&1; then
        cmd="sudo sh -c 'apt-get update -q && $install'"
    else
        cmd="su -c 'apt-get update -q && $install'"
    fi
    echo "ensure-system-deps: not root and no password-less sudo; run this, then make test again:" >&2
    echo "    $cmd" >&2
    exit 1
fi

export DEBIAN_FRONTEND=noninteractive
echo "ensure-system-deps: installing ${need[*]}" >&2
"${run[@]}" apt-get update -q
# shellcheck disable=SC2086  # $install is a word list on purpose
"${run[@]}" $install
