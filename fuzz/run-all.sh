#!/usr/bin/env bash
# Run every fuzz target (or the ones named after the seconds), one after another, for SECONDS
# each (default 600), each seeded with its carrier's published examples in
# tests/fixtures/carriers/<target>/ and the seeds in fuzz/seeds/<target>/. The corpus grows in
# fuzz/corpus/<target>/, crashes land in fuzz/artifacts/<target>/, each run's log in
# fuzz/logs/<target>.log; the last line printed per target is its summary.
#
#   fuzz/run-all.sh               # every target, 10 minutes each
#   fuzz/run-all.sh 60 dpd gls    # two targets, a minute each
set -uo pipefail
cd "$(dirname "$0")"

seconds="${1:-600}"
shift || true
if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(RUSTC_BOOTSTRAP=1 cargo fuzz list)
fi

# Waymark forbids unsafe code: what the targets look for is panics, overflows (cargo fuzz keeps
# debug assertions on), hangs and runaway memory, none of which needs AddressSanitizer; without
# it the same minutes try more inputs.
export RUSTC_BOOTSTRAP=1
mkdir -p logs
failed=()
for target in "${targets[@]}"; do
    mkdir -p "corpus/$target"
    seeds=()
    for dir in "../tests/fixtures/carriers/$target" "seeds/$target"; do
        [ -d "$dir" ] && seeds+=("$dir")
    done
    # Only the first directory is written to: the fixtures and seeds stay as they are.
    # -timeout: an input that takes 5 s is a hang (the seeds take microseconds);
    # -rss_limit_mb: a reader that needs a gigabyte for a few kilobytes is a bug.
    cargo fuzz run --sanitizer none "$target" "corpus/$target" "${seeds[@]}" -- \
        -max_total_time="$seconds" -timeout=5 -rss_limit_mb=1024 -print_final_stats=1 \
        >"logs/$target.log" 2>&1
    status=$?
    runs=$(grep -oE 'stat::number_of_executed_units: *[0-9]+' "logs/$target.log" | grep -oE '[0-9]+$')
    # libFuzzer's last status line: coverage, corpus (inputs/bytes), speed, memory.
    done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "logs/$target.log" | tail -1 | sed -E 's/^#[0-9]+[[:space:]]+DONE[[:space:]]+//')
    if [ "$status" -eq 0 ]; then
        echo "$target: ${seconds}s, ${runs:-?} inputs, no crash; $done_line"
    else
        failed+=("$target")
        echo "$target: FAILED (exit $status) after ${runs:-?} inputs; see fuzz/logs/$target.log and fuzz/artifacts/$target/"
    fi
done
[ "${#failed[@]}" -eq 0 ] || { echo "failed: ${failed[*]}" >&2; exit 1; }
