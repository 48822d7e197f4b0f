#!/usr/bin/env bash
# Waymark's whole test suite, from a fresh machine: installs what the tests need (a real SMTP
# server, Debian's python3-aiosmtpd; a real browser, Debian's chromium and chromium-driver; a
# PostgreSQL server, Debian's postgresql; from
# PyPI the `holidays` package, which the holiday calendar is checked against, and
# openapi-spec-validator, which checks the API's OpenAPI document), then
# runs every test. Extra arguments go to `cargo test`.
set -euo pipefail
cd "$(dirname "$0")/.."

python=${WAYMARK_TEST_PYTHON:-/usr/bin/python3}
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        $sudo apt-get update -qq
        apt_updated=yes
    fi
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "$@" >/dev/null
}

if ! "$python" -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing the test SMTP server (python3-aiosmtpd)..."
    apt_install python3-aiosmtpd
fi

# The browser the end-to-end tests drive: Debian's Chromium and its WebDriver server.
if ! command -v chromedriver >/dev/null 2>&1 || ! command -v chromium >/dev/null 2>&1; then
    echo "installing the test browser (chromium, chromium-driver)..."
    apt_install chromium chromium-driver
fi

# The PostgreSQL server the store's tests and the replica test run against: each test process
# starts a throwaway cluster of its own (initdb into a temporary directory, a free port on
# loopback), removed when it ends.
if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "installing the test database server (postgresql)..."
    apt_install postgresql
fi

# Install Python packages from PyPI.
pip_install() {
    "$python" -m pip --version >/dev/null 2>&1 || apt_install python3-pip
    # Root installs for everyone; anyone else into their own site-packages, unless the Python
    # is a virtual environment (which has its own).
    where=()
    if [ "$(id -u)" -ne 0 ] && "$python" -c 'import sys; sys.exit(sys.prefix != sys.base_prefix)'; then
        where=(--user)
    fi
    # Debian marks its Python as externally managed: pip then installs into /usr/local, beside
    # Debian's own packages.
    "$python" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        --break-system-packages "${where[@]}" "$@"
}

# This exact release: another one may date a holiday differently and fail the comparison for
# reasons that have nothing to do with Waymark. (Debian's python3-holidays is years too old to
# know 2025-2030.)
holidays_version=0.109
if ! "$python" -c "import holidays, sys; sys.exit(holidays.__version__ != '$holidays_version')" \
    2>/dev/null; then
    echo "installing the reference holiday calendar (holidays $holidays_version from PyPI)..."
    pip_install "holidays==$holidays_version"
fi

# The independent check that the merchant API's OpenAPI document is valid OpenAPI 3.1.
validator_version=0.9.0
if ! "$python" -c "import importlib.metadata as m, sys; \
    sys.exit(m.version('openapi-spec-validator') != '$validator_version')" 2>/dev/null; then
    echo "installing the OpenAPI validator (openapi-spec-validator $validator_version from PyPI)..."
    pip_install "openapi-spec-validator==$validator_version"
fi

cargo test --locked "$@"
