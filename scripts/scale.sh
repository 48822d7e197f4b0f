#!/usr/bin/env bash
# Waymark with a million active shipments in SQLite, beside the sqlite3 shell doing the same
# import, in one run:
#
#  1. import: `waymark shipments import` of an N-row CSV (rows/s, the importing process's peak
#     memory), versus the sqlite3 shell's `.import` of the same file into a plain table with the
#     same unique key;
#  2. the database's size per shipment;
#  3. the due claim and the wake-up queries, timed through the store (examples/scale.rs) with
#     every shipment due and messages pending;
#  4. the resident memory of an idle `waymark serve` on that database (every shipment next polled
#     tomorrow), after it has run for 30 s.
#
# It installs what it needs (Debian's sqlite3 and time) when missing, builds Waymark in release
# mode, and works in a temporary directory (or KEEP=dir, kept afterwards).
#
#   ./scripts/scale.sh [SHIPMENTS]                 (default 1000000)
#   WAYMARK=/tmp/waymark ./scripts/scale.sh        (measure a binary built before)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shipments=${1:-1000000}

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
command -v sqlite3 >/dev/null 2>&1 || missing+=(sqlite3)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ -z "${WAYMARK:-}" ]; then
    cargo build --release --locked --quiet
fi
cargo build --release --locked --quiet --example scale
waymark="${WAYMARK:-$repo/target/release/waymark}"
scale="$repo/target/release/examples/scale"

if [ -n "${KEEP:-}" ]; then
    work=$KEEP
    mkdir -p "$work"
else
    work=$(mktemp -d /tmp/waymark-scale.XXXXXX)
fi
serve_pid=""
cleanup() {
    [ -n "$serve_pid" ] && kill "$serve_pid" 2>/dev/null || true
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
cd "$work"
rm -f waymark.db* plain.db*

echo "writing $shipments rows..."
awk -v n="$shipments" 'BEGIN {
    print "carrier,tracking_number,customer_email,customer_name,locale,destination_country,order_reference"
    for (i = 0; i < n; i++)
        printf "dhl,00340434%012d,customer%d@example.com,Customer %d,de,DE,ORDER-%d\n", i, i, i, i, i
}' > shipments.csv

# --- the plain tool: the sqlite3 shell importing the same rows ---------------------------------
sqlite3 plain.db "PRAGMA journal_mode = WAL; CREATE TABLE shipments (carrier TEXT NOT NULL, \
    tracking_number TEXT NOT NULL, customer_email TEXT, customer_name TEXT, locale TEXT, \
    destination_country TEXT, order_reference TEXT, UNIQUE (carrier, tracking_number));" >/dev/null
started=$(date +%s.%N)
sqlite3 plain.db ".import --csv --skip 1 shipments.csv shipments"
ended=$(date +%s.%N)
plain_rate=$(awk -v n="$shipments" -v a="$started" -v b="$ended" 'BEGIN {printf "%.0f", n / (b - a)}')

# --- Waymark -----------------------------------------------------------------------------------
cat > waymark.toml <<EOF
database_url = "sqlite://$work/waymark.db"
public_url = "https://track.shop.example"
merchant_name = "Scale Shop"
[http]
listen = "127.0.0.1:18090"
[email]
from = "Scale Shop <notify@shop.example>"
transport = "file"
[carrier_accounts.dhl]
api_key = "scale"
# Nothing listens here: the idle serve has nothing due and calls no one.
base_url = "http://127.0.0.1:9"
EOF
export WAYMARK_CONFIG="$work/waymark.toml"
export WAYMARK_LOG=warn
"$waymark" migrate >/dev/null
started=$(date +%s.%N)
/usr/bin/time -f "%M" -o import.rss "$waymark" shipments import shipments.csv 2>import.log >/dev/null
ended=$(date +%s.%N)
import_rate=$(awk -v n="$shipments" -v a="$started" -v b="$ended" 'BEGIN {printf "%.0f", n / (b - a)}')
import_rss_mb=$(awk '{printf "%.0f", $1 / 1024}' import.rss)
stored=$(sqlite3 waymark.db "SELECT COUNT(*) FROM shipments")
[ "$stored" -eq "$shipments" ] || { echo "error: $stored of $shipments rows stored" >&2; exit 1; }
sqlite3 waymark.db "PRAGMA wal_checkpoint(TRUNCATE)" >/dev/null
db_bytes=$(stat -c %s waymark.db)

echo
"$scale" --database "sqlite://$work/waymark.db" --idle
# The messages the timing queued were only there to be looked for: the idle serve sends none.
sqlite3 waymark.db "UPDATE notifications SET state = 'suppressed' WHERE state = 'pending'"

"$waymark" serve >serve.log 2>&1 &
serve_pid=$!
sleep 30
serve_rss_mb=$(awk '/^VmRSS/ {printf "%.0f", $2 / 1024}' "/proc/$serve_pid/status")
kill -TERM "$serve_pid"
wait "$serve_pid" || true
serve_pid=""

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "| measure | Waymark | plain tool | ratio |"
echo "|---|---|---|---|"
echo "| import, rows/s ($shipments rows) vs sqlite3 .import | $import_rate | $plain_rate | $(ratio "$import_rate" "$plain_rate")× |"
echo "| importing process, peak resident memory | $import_rss_mb MB | | |"
echo "| database size | $((db_bytes / 1024 / 1024)) MB, $((db_bytes / shipments)) bytes a shipment | | |"
echo "| idle \`waymark serve\`, resident memory after 30 s | $serve_rss_mb MB | | |"
