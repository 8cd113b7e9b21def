#!/usr/bin/env bash
# `make fuzz`: every fuzz target for FUZZ_SECONDS (default 300) each, with libFuzzer and
# AddressSanitizer when the toolchain's clang has libFuzzer (Swift's clang does), else the
# seeded mutation loop of a normal build. Working corpora grow in .build/fuzz/corpus/<target>
# (the seeds in fuzz/corpus stay as committed); crashes go to .build/fuzz/artifacts/.
#   make fuzz FUZZ_SECONDS=3600 FUZZ_TARGETS="png jpeg"
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-300}
TARGETS=${FUZZ_TARGETS:-"png jpeg idx cifar tar index checkpoint shard h5raw"}
LIBRARY_TARGETS=" h5raw "   # findings are libhdf5's; reported, not fatal
SWIFT=${SWIFT:-swift}
CLANG="$(dirname "$(command -v "$SWIFT")")/clang"   # the toolchain's clang, which ships libFuzzer
OUT=.build/fuzz
mkdir -p "$OUT/artifacts"

has_libfuzzer() {
    local probe; probe=$(mktemp -d)
    echo 'int LLVMFuzzerTestOneInput(const char *d, long n) { return 0; }' > "$probe/p.c"
    "$CLANG" -fsanitize=fuzzer "$probe/p.c" -o "$probe/p" >/dev/null 2>&1
    local rc=$?; rm -rf "$probe"; return $rc
}

status=0
if has_libfuzzer; then
    echo "== building ffrepro-fuzz with libFuzzer + AddressSanitizer"
    "$SWIFT" build -c release --product ffrepro-fuzz --scratch-path "$OUT" --sanitize=fuzzer --sanitize=address \
        -Xswiftc -DFFREPRO_LIBFUZZER 2>&1 | grep -vE "Cannot export local symbol" | tail -3
    BIN="$OUT/release/ffrepro-fuzz"
    for t in $TARGETS; do
        mkdir -p "$OUT/corpus/$t"
        extra=()
        case "$LIBRARY_TARGETS" in *" $t "*) extra=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1) ;; esac
        echo "== $t: ${SECONDS_EACH}s"
        set +e
        FFREPRO_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 "$BIN" \
            -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=20 -max_len=65536 -print_final_stats=1 \
            -artifact_prefix="$OUT/artifacts/$t-" "${extra[@]}" "$OUT/corpus/$t" "fuzz/corpus/$t" > "$OUT/$t.log" 2>&1
        rc=$?
        set -e
        runs=$(grep -Eo "stat::number_of_executed_units: *[0-9]+" "$OUT/$t.log" | grep -Eo "[0-9]+$" | tail -1 || true)
        [ -z "$runs" ] && runs=$(grep -Eo "^#[0-9]+" "$OUT/$t.log" | tail -1 | tr -d '#' || true)
        crashes=$(ls "$OUT/artifacts" 2>/dev/null | grep -c "^$t-" || true)
        echo "   $t: ${runs:-?} executions, exit $rc, artifacts $crashes (log $OUT/$t.log)"
        case "$LIBRARY_TARGETS" in *" $t "*) ;; *) [ $rc -ne 0 ] && status=1 ;; esac
    done
else
    echo "== clang without libFuzzer: seeded mutation loop (normal build)"
    "$SWIFT" build -c release --product ffrepro-fuzz
    for t in $TARGETS; do
        set +e
        .build/release/ffrepro-fuzz run "$t" fuzz/corpus --iterations 100000000 --seconds "$SECONDS_EACH" --seed "$RANDOM"
        rc=$?
        set -e
        case "$LIBRARY_TARGETS" in *" $t "*) ;; *) [ $rc -ne 0 ] && status=1 ;; esac
    done
fi
exit $status
