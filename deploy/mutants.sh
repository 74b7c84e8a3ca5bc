#!/usr/bin/env bash
# `make mutants`: proves the tests can fail. Each mutation in mutants/*.patch is a small, deliberate bug with a
# one-line description and the tests that must catch it:
#
#   # accept any upload path
#   # tests: FarmCoordinatorTests\.StagedResultTests
#   diff --git a/Coordinator/StagedResult.swift b/Coordinator/StagedResult.swift
#   ...
#
# A mutation of the suite itself (a test that hangs, a test target with no test) names instead a command that plays
# the harness and exits non-zero when the harness catches it:
#
#   # a test that never ends
#   # command: FARM_TEST_TARGETS=FarmProtocolTests ... bash deploy/test.sh 2>&1 | grep "STALLED" >/dev/null && exit 1; exit 0
#
# (grep without -q: reading to the end lets deploy/test.sh finish and stop its PostgreSQL.)
#
# Each is applied to this checkout (which must have no uncommitted changes to tracked files), built, and run
# against its tests, then reverted. Prints a table mutation -> the tests that caught it, or SURVIVED, and exits
# non-zero if any mutation survives, does not apply or does not build. Before the mutations, the tests they name
# must pass on the unmutated tree. Logs are kept in .build/mutants/.
#
#   MUTANTS   the mutations to run, by file name without .patch (default: all)
#   MUTANT_TIMEOUT  seconds one mutation's tests may run (default 900); a mutation whose tests hang is caught
#                   (a stall is a failure), and reported as such
set -euo pipefail
# deploy/test.sh checks that every mutation applies; with one applied, it must not.
export FARM_MUTANT=1
cd "$(dirname "$0")/.."

phase() { echo "==> mutants: $*" >&2; }

if ! git diff --quiet HEAD --; then
    echo "mutants.sh: the checkout has uncommitted changes; commit or stash them first (each mutation patches" \
        "tracked files and is reverted with git)" >&2
    exit 2
fi

patches=()
if [ -n "${MUTANTS:-}" ]; then
    for name in $MUTANTS; do patches+=("mutants/$name.patch"); done
else
    patches=(mutants/*.patch)
fi
[ "${#patches[@]}" -gt 0 ] && [ -f "${patches[0]}" ] || { echo "mutants.sh: no mutation in mutants/" >&2; exit 2; }

# shellcheck source=deploy/test-services.sh
source deploy/test-services.sh
applied=
cleanup() {
    if [ -n "$applied" ]; then
        phase "reverting $applied"
        git apply -R "$applied" || git checkout -- .
    fi
    stop_test_services
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

logs=.build/mutants
mkdir -p "$logs"
timeout_seconds=${MUTANT_TIMEOUT:-900}

description() { sed -n '1s/^# //p' "$1"; }
tests_of() { sed -n '2s/^# tests: //p' "$1"; }
command_of() { sed -n '2s/^# command: //p' "$1"; }

run_tests() { # filter log [timeout]
    timeout -k 10 "${3:-$timeout_seconds}" stdbuf -oL -eL swift test --no-parallel --skip-build --filter "$1" >"$2" 2>&1
}

for patch in "${patches[@]}"; do
    [ -n "$(description "$patch")" ] && [ -n "$(tests_of "$patch")$(command_of "$patch")" ] || {
        echo "mutants.sh: $patch does not start with '# <description>' and '# tests: <filter>' or '# command: ...'" >&2
        exit 2
    }
done

start_test_services
phase "building the unmutated tree"
swift build --build-tests
union=$(for patch in "${patches[@]}"; do tests_of "$patch"; done | sed '/^$/d' | sort -u | paste -sd '|')
if [ -z "$union" ]; then
    phase "no mutation names tests: nothing to run on the unmutated tree"
elif phase "the mutations' tests on the unmutated tree: $union" && ! run_tests "$union" "$logs/unmutated.log" 2400; then
    echo "mutants.sh: the tests fail without any mutation (see $logs/unmutated.log):" >&2
    failed_tests "$logs/unmutated.log" >&2
    exit 1
fi

rows=()
survivors=0
for patch in "${patches[@]}"; do
    name=$(basename "$patch" .patch)
    log="$logs/$name.log"
    phase "$name: $(description "$patch")"
    if ! git apply "$patch" 2>"$log"; then
        rows+=("| $(description "$patch") | \`$name\` | DOES NOT APPLY: update the patch |")
        survivors=$((survivors + 1))
        continue
    fi
    applied=$patch
    started=$SECONDS
    if ! swift build --build-tests >>"$log" 2>&1; then
        verdict="DOES NOT BUILD: see $log"
        survivors=$((survivors + 1))
    elif [ -n "$(command_of "$patch")" ]; then
        status=0
        timeout -k 10 "$timeout_seconds" bash -c "$(command_of "$patch")" >>"$log" 2>&1 || status=$?
        if [ "$status" -eq 0 ]; then
            verdict="**SURVIVED** (the harness did not catch it)"
            survivors=$((survivors + 1))
        else
            verdict="caught by deploy/test.sh: $(grep '==> test: .*: [0-9]* tests, ' "$log" | tail -n 1 | sed 's/^==> test: //' || true)"
        fi
    else
        status=0
        run_tests "$(tests_of "$patch")" "$log" || status=$?
        if [ "$status" -eq 0 ]; then
            verdict="**SURVIVED**"
            survivors=$((survivors + 1))
        elif [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
            verdict="caught: stalled in $(unfinished "$log")"
        else
            caught=$(failed_tests "$log" | paste -sd ';' | sed 's/;/; /g')
            verdict="caught by ${caught:-the test process (exit $status)}"
        fi
    fi
    git apply -R "$patch"
    applied=
    rows+=("| $(description "$patch") | \`$name\` | $verdict ($((SECONDS - started)) s) |")
    phase "$name: $verdict"
done

echo
echo "| mutation | patch | caught by |"
echo "| --- | --- | --- |"
printf '%s\n' "${rows[@]}"
echo
if [ "$survivors" -eq 0 ]; then
    phase "all ${#patches[@]} mutations caught"
else
    phase "$survivors of ${#patches[@]} mutations not caught (survived, or did not apply or build)"
    exit 1
fi
