#!/usr/bin/env bash
# Runs the command given (the XCTest suite), keeps its whole output in $LOG, and prints
# what a reader needs: each failure with its file and line, skipped tests, and the totals.
# A passing suite prints a few lines instead of ~600 "Test Case ... passed" lines.
set -u
LOG=${LOG:-.build/test.log}
mkdir -p "$(dirname "$LOG")"
"$@" > "$LOG" 2>&1
rc=$?
# Failures: XCTest writes "<file>:<line>: error: <Suite.test> : <message>".
fails=$(grep -E ': error: |Fatal error|Test Case .* failed|crashed|Exited with (signal|unexpected)' "$LOG")
if [ -n "$fails" ]; then
    echo "FAILURES (whole output: $LOG):"
    echo "$fails" | head -200
    n=$(echo "$fails" | wc -l)
    [ "$n" -gt 200 ] && echo "... $((n - 200)) more lines in $LOG"
fi
grep -E 'Test Case .* skipped|: Skipped|skipped \(' "$LOG" | head -20
# The totals of the whole run (the last "Executed" line of the top-level suite).
grep -E "^Test Suite '(All tests|Selected tests)' (passed|failed)" "$LOG" | tail -1
grep -E '^[[:space:]]*Executed [0-9]+ tests?' "$LOG" | tail -1
if [ $rc -ne 0 ]; then
    [ -z "$fails" ] && { echo "the suite exited with status $rc; last lines of $LOG:"; tail -40 "$LOG"; }
    echo "make test: FAILED (exit $rc); whole output in $LOG"
else
    echo "make test: passed (whole output in $LOG)"
fi
exit $rc
