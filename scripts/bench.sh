#!/usr/bin/env bash
# Waymark's throughput beside plain tools doing the same work on the same machine, in one run:
#
#  1. polls:  `waymark serve` polling N DHL shipments against a local stand-in for DHL's API
#             (nginx serving a recorded answer), versus wrk's requests/s against that nginx;
#  2. emails: `waymark serve` sending the M messages those polls queued to Postfix's smtp-sink,
#             versus smtp-source sending as many messages of the same size to the same sink.
#
# Rates are taken from Waymark's own records (the spread of `last_polled_at` and `sent_at`), so
# start-up and shutdown do not count. It installs what it needs (Debian's nginx, wrk, postfix and
# sqlite3) when missing, builds Waymark in release mode, and works in a temporary directory.
#
#   ./scripts/bench.sh [SHIPMENTS] [MESSAGES]      (defaults 20000 and 10000)
#   WAYMARK=/tmp/waymark ./scripts/bench.sh        (measure a binary built before)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$(pwd)
shipments=${1:-20000}
messages=${2:-10000}
nginx_port=18089
smtp_port=12525

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
missing=()
for tool in nginx:nginx wrk:wrk smtp-sink:postfix smtp-source:postfix sqlite3:sqlite3; do
    command -v "${tool%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${tool%%:*}" ] || missing+=("${tool##*:}")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "installing ${missing[*]}..."
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
fi
PATH="$PATH:/usr/sbin"

# WAYMARK=path/to/waymark measures that binary instead of building one.
if [ -z "${WAYMARK:-}" ]; then
    cargo build --release --locked --quiet
fi
waymark="${WAYMARK:-$repo/target/release/waymark}"

work=$(mktemp -d /tmp/waymark-bench.XXXXXX)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT
cd "$work"

# --- the stand-in carrier ---------------------------------------------------------------------
mkdir -p nginx/logs
cat > nginx/nginx.conf <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx/logs/error.log;
events { worker_connections 4096; }
http {
    access_log off;
    keepalive_requests 1000000;
    server {
        listen 127.0.0.1:$nginx_port;
        location = /track/shipments {
            default_type application/json;
            alias $repo/tests/fixtures/carriers/dhl/example_response.json;
        }
    }
}
EOF
nginx -p "$work/nginx" -c "$work/nginx/nginx.conf"
sleep 0.3
wrk_rps=$(wrk -t2 -c16 -d10s "http://127.0.0.1:$nginx_port/track/shipments?trackingNumber=1" \
    | awk '/Requests\/sec/ {print $2}')

# --- Waymark polling --------------------------------------------------------------------------
cat > waymark.toml <<EOF
database_url = "sqlite://$work/waymark.db"
public_url = "https://track.shop.example"
merchant_name = "Bench Shop"
[http]
enabled = false
[quiet_hours]
enabled = false
[housekeeping]
enabled = false
[email]
from = "Bench Shop <notify@shop.example>"
transport = "smtp"
[email.smtp]
host = "127.0.0.1"
port = $smtp_port
tls = "none"
[carrier_accounts.dhl]
api_key = "bench"
base_url = "http://127.0.0.1:$nginx_port"
daily_quota = 100000000
requests_per_second = 1000000.0
EOF
export WAYMARK_CONFIG="$work/waymark.toml"
{
    echo "carrier,tracking_number,customer_email,customer_name,locale,destination_country"
    for ((n = 0; n < shipments; n++)); do
        printf 'dhl,00340434%012d,customer%d@example.com,Customer %d,de,DE\n' "$n" "$n" "$n"
    done
} > shipments.csv
"$waymark" migrate >/dev/null
"$waymark" shipments import shipments.csv >/dev/null

count() { sqlite3 "$work/waymark.db" "$1"; }
serve_until() { # serve_until SQL TARGET WHAT: run `waymark serve` until SQL says TARGET
    local started=$SECONDS
    WAYMARK_LOG=warn "$waymark" serve &
    local pid=$!
    pids+=("$pid")
    local cpu_start
    cpu_start=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    while [ "$(count "$1")" -lt "$2" ]; do
        if [ $((SECONDS - started)) -gt 900 ]; then
            echo "gave up waiting for $3" >&2
            exit 1
        fi
        sleep 0.2
    done
    local cpu_end
    cpu_end=$(awk '{print $14 + $15}' "/proc/$pid/stat")
    kill -TERM "$pid"
    wait "$pid" || true
    # CPU seconds Waymark used while it worked (clock ticks of 1/100 s).
    echo $(( (cpu_end - cpu_start) ))
}

poll_cpu=$(WAYMARK_DISPATCHER__ENABLED=false serve_until \
    "SELECT COUNT(*) FROM shipments WHERE last_polled_at IS NOT NULL" "$shipments" polls)
poll_span=$(count "SELECT (MAX(last_polled_at) - MIN(last_polled_at)) / 1000.0 FROM shipments")
polls_per_second=$(awk -v n="$shipments" -v s="$poll_span" 'BEGIN {printf "%.0f", n / s}')

# --- Waymark sending --------------------------------------------------------------------------
queued=$(count "SELECT COUNT(*) FROM notifications WHERE state = 'pending'")
[ "$queued" -ge "$messages" ] || messages=$queued
# Send exactly `messages` of them: the rest are suppressed first.
count "UPDATE notifications SET state = 'suppressed' WHERE state = 'pending' AND id NOT IN \
    (SELECT id FROM notifications WHERE state = 'pending' ORDER BY id LIMIT $messages)"
# About the size of a Waymark email (multipart text and HTML).
size=6000

smtp-sink -u nobody -c "127.0.0.1:$smtp_port" 1000 > sink-source.log 2>&1 &
pids+=("$!")
sleep 0.3
source_started=$(date +%s.%N)
smtp-source -s 8 -l "$size" -m "$messages" -f bench@shop.example -t customer@example.com \
    "127.0.0.1:$smtp_port"
source_ended=$(date +%s.%N)
kill "${pids[-1]}"
source_per_second=$(awk -v n="$messages" -v a="$source_started" -v b="$source_ended" \
    'BEGIN {printf "%.0f", n / (b - a)}')

smtp-sink -u nobody -c "127.0.0.1:$smtp_port" 1000 > sink-waymark.log 2>&1 &
sink=$!
pids+=("$sink")
sleep 0.3
send_cpu=$(WAYMARK_SCHEDULER__ENABLED=false serve_until \
    "SELECT COUNT(*) FROM notifications WHERE state = 'sent'" "$messages" emails)
sleep 0.5
kill "$sink"
sent=$(count "SELECT COUNT(*) FROM notifications WHERE state = 'sent'")
send_span=$(count "SELECT (MAX(sent_at) - MIN(sent_at)) / 1000.0 FROM notifications WHERE state = 'sent'")
emails_per_second=$(awk -v n="$sent" -v s="$send_span" 'BEGIN {printf "%.0f", n / s}')
# smtp-sink's running counters: the last `mesg=N` is how many messages it received.
received=$(tr '\r' '\n' < sink-waymark.log | grep -o 'mesg=[0-9]*' | tail -1 | cut -d= -f2)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }
echo
echo "| measure | Waymark | plain tool | ratio | Waymark CPU |"
echo "|---|---|---|---|---|"
echo "| polls/s, $shipments DHL shipments vs wrk req/s on the same nginx | $polls_per_second | $wrk_rps | $(ratio "$polls_per_second" "$wrk_rps")× | $((poll_cpu / 100)) s |"
echo "| emails/s, $sent messages vs smtp-source (8 sessions) into smtp-sink | $emails_per_second | $source_per_second | $(ratio "$emails_per_second" "$source_per_second")× | $((send_cpu / 100)) s |"
echo
echo "smtp-sink received ${received:-?} of the $sent messages Waymark marked sent."
if [ -n "${received:-}" ] && [ "$received" != "$sent" ]; then
    echo "error: the sink's count differs from what Waymark marked sent" >&2
    exit 1
fi
