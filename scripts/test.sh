#!/usr/bin/env bash
# Waymark's whole test suite, from a fresh machine: installs what the tests need (a real SMTP
# server, Debian's python3-aiosmtpd), then runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${WAYMARK_TEST_PYTHON:-/usr/bin/python3}
if ! "$python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing the test SMTP server (python3-aiosmtpd)..."
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-aiosmtpd >/dev/null
fi

cargo test --locked "$@"
