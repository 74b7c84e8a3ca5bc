#!/usr/bin/env bash
# Runs the test suite against a throwaway PostgreSQL (FARM_TEST_DATABASE_URL), which is stopped and removed
# afterwards whatever happens, with the player tests' Python environment (FARM_TEST_PYTHON, from
# deploy/python-env.sh). Exits with the tests' status. `deploy/test.sh --list-targets` prints the test targets it
# would run, and nothing else.
#
#   FARM_TEST_TARGETS  the test targets to run, for example "FarmMediaTests" (default: every test target of the
#                      package); each must run at least one test
#   FARM_TEST_TARGET_TIMEOUT  seconds a target may run before it counts as stalled (default 1500)
#   FARM_TEST_FILTER   runs only the tests whose identifier matches this regular expression, for example
#                      "ChunkPlannerTests"; a target with no match is then reported, not failed
#   SWIFT_TEST_FLAGS   extra arguments for `swift test`, for example "--skip PlayersTests" (a `--filter` here would
#                      add tests to each target's run, not narrow it: filters are combined as a union)
#   SWIFT_BUILD_FLAGS  extra arguments for both `swift build` and `swift test`, for example
#                      "-Xswiftc -warnings-as-errors"
set -euo pipefail
cd "$(dirname "$0")/.."

read -r -a test_flags <<<"${SWIFT_TEST_FLAGS:-}"
read -r -a build_flags <<<"${SWIFT_BUILD_FLAGS:-}"

phase() { echo "==> test: $*" >&2; }

# Every test target of the package, so a new target runs without being listed here.
if [ -z "${FARM_TEST_TARGETS:-}" ]; then
    manifest=$(swift package dump-package) || { echo "test.sh: swift package dump-package failed" >&2; exit 1; }
    FARM_TEST_TARGETS=$(python3 -c '
import json, sys
print(" ".join(t["name"] for t in json.load(sys.stdin)["targets"] if t["type"] == "test"))' <<<"$manifest")
fi
read -r -a targets <<<"$FARM_TEST_TARGETS"
[ "${#targets[@]}" -gt 0 ] || { echo "test.sh: the package has no test target" >&2; exit 1; }
phase "test targets: ${targets[*]}"
if [ "${1:-}" = "--list-targets" ]; then
    printf '%s\n' "${targets[@]}"
    exit 0
fi

# The mutations `make mutants` runs are patches of this code: one that no longer applies proves nothing, so it
# fails the run here, at once, rather than in the next `make mutants` (which sets FARM_MUTANT while one is applied).
if [ -z "${FARM_MUTANT:-}" ] && git rev-parse --git-dir >/dev/null 2>&1; then
    stale=()
    for patch in mutants/*.patch; do git apply --check "$patch" 2>/dev/null || stale+=("$patch"); done
    if [ "${#stale[@]}" -gt 0 ]; then
        echo "test.sh: ${stale[*]} no longer apply to the code: make the same bug in the code as it is now and" \
            "save it with its two header lines (deploy/mutants.sh says how)" >&2
        exit 1
    fi
fi

# shellcheck source=deploy/test-services.sh
source deploy/test-services.sh
cleanup() {
    stop_test_services
    rm -rf "${logs:-}"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
start_test_services

phase "swift build --build-tests ${build_flags[*]}"
swift build --build-tests "${build_flags[@]}"

target_timeout=${FARM_TEST_TARGET_TIMEOUT:-1500}
logs=$(mktemp -d /tmp/farm-test-logs-XXXXXX)
status=0
summary=()
# --no-parallel: the fault tests time leases and heartbeats against real processes; other suites encoding on the
# same two cores at once stretch those timings (seen as a stalled job under load).
# One test target per process, each under a time limit. A stalled target fails the run, naming the tests it had
# started and not finished; nothing is retried. Slow tests carry Swift Testing's `.timeLimit`, and the test
# harnesses' teardown watchdog (Tests/FarmTestSupport/TeardownWatch.swift) ends the process when a part of a test
# farm ignores cancellation, so a stall is reported by name long before this limit.
for target in "${targets[@]}"; do
    filter="^$target\\.${FARM_TEST_FILTER:+.*($FARM_TEST_FILTER)}"
    phase "swift test ${build_flags[*]} ${test_flags[*]} --filter $filter"
    log="$logs/$target.log"
    target_status=0
    # stdbuf: Swift Testing's progress goes to stdout, block-buffered into a pipe, so a stalled target's last lines
    # (the test it stalled in) would be lost when it is killed.
    timeout -k 10 "$target_timeout" stdbuf -oL -eL swift test --no-parallel --skip-build "${build_flags[@]}" "${test_flags[@]}" \
        --filter "$filter" 2>&1 | tee "$log" || target_status=${PIPESTATUS[0]}
    # Only this checkout's test process: another run on the same machine is left alone.
    pkill -9 -f "$PWD/\.build/.*farmPackageTests\.xctest" 2>/dev/null || true
    count=$(tests_run "$log")
    if [ "$target_status" -eq 124 ] || [ "$target_status" -eq 137 ]; then
        result="STALLED (no end within $target_timeout s) in: $(unfinished "$log")"
    elif [ "$target_status" -ne 0 ]; then
        # A crash, or the teardown watchdog ending the process, prints no count: the exit status and the
        # watchdog's line say what happened.
        result="FAILED (exit $target_status)"
        if grep -q "TEARDOWN STALL" "$log"; then result="$result: $(grep "TEARDOWN STALL" "$log" | tail -n 1)"; fi
    elif [ -z "$count" ] || [ "$count" -eq 0 ]; then
        if [ -n "${FARM_TEST_FILTER:-}" ]; then
            result="no test matches FARM_TEST_FILTER"
        else
            result="FAILED: ran no test"
            target_status=1
        fi
    else
        result="passed"
    fi
    [ "$target_status" -eq 0 ] || status=$target_status
    summary+=("$(printf '%-24s %5s tests  %s' "$target" "${count:-0}" "$result")")
    phase "$target: ${count:-0} tests, $result"
done
phase "tests run per target:"
printf '    %s\n' "${summary[@]}" >&2
if [ "$status" -eq 0 ]; then
    phase "passed"
else
    phase "FAILED (swift test exited with $status)"
fi
exit "$status"
