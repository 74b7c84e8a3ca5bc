# Sourced by deploy/test.sh and deploy/mutants.sh: what every test run needs, started and stopped the same way.
#
# start_test_services: a throwaway PostgreSQL on the first free port from 55432 (FARM_TEST_DATABASE_URL), and the
#   player tests' Python environment (FARM_TEST_PYTHON, from deploy/python-env.sh).
# stop_test_services: stops that PostgreSQL and removes its folder; safe to call more than once.
# Both print their steps through the caller's `phase` function.
# unfinished LOG, tests_run LOG, failed_tests LOG: read a `swift test` log (Swift Testing's output).

test_pg_dir=

start_test_services() {
    test_pg_dir=$(mktemp -d /tmp/farm-test-pg-XXXXXX)
    # The first free port from 55432, so that concurrent runs on one machine do not collide.
    local port=55432
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
        [ "$port" -lt 55532 ] || { echo "no free port for PostgreSQL in 55432-55531" >&2; return 1; }
    done
    phase "starting PostgreSQL in $test_pg_dir on port $port"
    FARM_TEST_DATABASE_URL=$(deploy/postgres.sh start "$test_pg_dir" "$port")
    export FARM_TEST_DATABASE_URL
    phase "FARM_TEST_DATABASE_URL=$FARM_TEST_DATABASE_URL"

    # The player tests run the m3u8 parser from PyPI (pinned in Tests/players/requirements.txt) and headless Chromium.
    phase "Python environment for the player tests"
    FARM_TEST_PYTHON=$(deploy/python-env.sh)
    export FARM_TEST_PYTHON
    phase "FARM_TEST_PYTHON=$FARM_TEST_PYTHON"
}

stop_test_services() {
    [ -n "$test_pg_dir" ] || return 0
    phase "stopping PostgreSQL and removing $test_pg_dir"
    deploy/postgres.sh stop "$test_pg_dir" || true
    rm -rf "$test_pg_dir"
    test_pg_dir=
}

# The tests that started and never finished, from a target's log: what a stall was doing.
unfinished() {
    python3 - "$1" <<'PY'
import re, sys
started, ended = [], set()
for line in open(sys.argv[1], errors="replace"):
    # "◇ Test name() started." (not "Test run started." or a parameterized test's "Test case passing ...");
    # "✔ Test name() passed after ...", "✘ Test name() with 3 test cases failed after ...", "➜ Test name() skipped".
    if m := re.match(r"\S+ Test (.+) started\.$", line):
        if m.group(1) != "run" and not m.group(1).startswith("case "):
            started.append(m.group(1))
    elif m := re.match(r"\S+ Test (.+?)(?: with \d+ test cases?)? (?:(?:passed|failed) after |skipped)", line):
        ended.add(m.group(1))
print("; ".join(name for name in started if name not in ended) or "none (stalled outside a test)")
PY
}

# The number of tests a target ran, from Swift Testing's last line ("Test run with N tests ...").
tests_run() {
    sed -n 's/.*Test run with \([0-9][0-9]*\) tests\{0,1\} .*/\1/p' "$1" | tail -n 1
}

# The tests that failed, from a target's log, one per line.
failed_tests() {
    sed -n 's/^.*Test \(.*\) failed after .*$/\1/p' "$1" | { grep -v '^run with ' || true; } | sort -u
}
