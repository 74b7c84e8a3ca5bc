#!/usr/bin/env bash
# Manages a throwaway PostgreSQL server for tests and the all-in-one mode.
#
#   deploy/postgres.sh start DIR [PORT]   initdb if needed, start on 127.0.0.1:PORT (default 55432), print the URL
#   deploy/postgres.sh stop DIR           fast shutdown; a no-op when nothing is running
#
# The cluster lives in DIR/data, the unix socket in DIR, the server log in DIR/server.log. `start` prints exactly
# one line on stdout, the connection URL; everything else goes to stderr. Durability is switched off for speed:
# never keep data you care about in such a server. FARM_POSTGRES_OPTIONS adds server options (`-c name=value ...`)
# when the server is started.
set -euo pipefail

usage() {
    echo "usage: $0 start DIR [PORT] | $0 stop DIR" >&2
    exit 2
}

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

[ $# -ge 2 ] || usage
command=$1
dir=$2
port=${3:-55432}

# The server binaries. Debian's pg_config can point at a version without a server (libpq-dev's), so fall back to
# the highest installed /usr/lib/postgresql/*/bin that has initdb.
find_pgbin() {
    local candidate
    if candidate=$(pg_config --bindir 2>/dev/null) && [ -x "$candidate/initdb" ]; then
        echo "$candidate"
        return
    fi
    candidate=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    if [ -n "$candidate" ] && [ -x "$candidate/initdb" ]; then
        echo "$candidate"
        return
    fi
    die "no PostgreSQL server binaries found (initdb); install them with: bash deploy/install-deps.sh"
}

is_root() { [ "$(id -u)" -eq 0 ]; }

# initdb, pg_ctl and postgres refuse to run as root: as root they run as the postgres user.
as_pg() {
    if is_root; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# The port of the server running on DIR/data, from its postmaster.pid (line 4).
running_port() {
    sed -n 4p "$dir/data/postmaster.pid" 2>/dev/null || true
}

is_running() {
    [ -f "$dir/data/PG_VERSION" ] || return 1
    as_pg "$pgbin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

url() {
    echo "postgres://postgres@127.0.0.1:$1/postgres"
}

case "$command" in
start | stop) ;;
*) usage ;;
esac

case "$port" in
'' | *[!0-9]*) die "port must be a number, not '$port'" ;;
esac
if [ "$port" -lt 1 ] || [ "$port" -gt 65535 ]; then
    die "port must be between 1 and 65535, not $port"
fi
case "$dir" in
*"'"* | *[[:space:]]*) die "DIR must not contain quotes or whitespace: '$dir'" ;;
esac

pgbin=$(find_pgbin)

if [ "$command" = stop ]; then
    [ -d "$dir" ] || exit 0
    dir=$(cd "$dir" && pwd -P)
    cd "$dir"
    if is_running; then
        as_pg "$pgbin/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop >&2
    fi
    exit 0
fi

# start
if [ -d "$dir" ]; then
    created=false
else
    mkdir -p "$dir"
    created=true
fi
dir=$(cd "$dir" && pwd -P)
# Unix socket paths are limited to 107 bytes: DIR/.s.PGSQL.PORT must fit.
socket="$dir/.s.PGSQL.$port"
if [ ${#socket} -gt 107 ]; then
    die "DIR is too long for a unix socket path ($socket); use a shorter one, for example" \
        "$(mktemp -u /tmp/farm-pg-XXXXXX)"
fi

if is_root; then
    # Searching the parent needs search permission on every directory on the path.
    if ! runuser -u postgres -- test -x "$(dirname "$dir")"; then
        [ "$created" = true ] && rmdir "$dir"
        die "the postgres user cannot reach $dir (a parent directory is not traversable by other users);" \
            "use a directory under /tmp instead, for example $(mktemp -u /tmp/farm-pg-XXXXXX)"
    fi
    if [ "$(stat -c %U "$dir")" != postgres ]; then
        # Refuse to hand an existing, unrelated directory (the repository, /tmp, ...) over to postgres.
        if [ "$created" = false ] && [ -n "$(ls -A "$dir")" ]; then
            die "$dir is not empty and not owned by postgres; give a new or empty directory, for example" \
                "$(mktemp -u /tmp/farm-pg-XXXXXX)"
        fi
        chown postgres:postgres "$dir"
    fi
    runuser -u postgres -- test -w "$dir" || die "the postgres user cannot write to $dir"
fi

# The server processes inherit the working directory; make it one the postgres user can enter.
cd "$dir"

if is_running; then
    actual=$(running_port)
    if [ -n "$actual" ] && [ "$actual" != "$port" ] && [ $# -ge 3 ]; then
        echo "postgres.sh: a server is already running on $dir, on port $actual (not $port)" >&2
    fi
    url "${actual:-$port}"
    exit 0
fi

if [ ! -d "$dir/data" ]; then
    if ! as_pg "$pgbin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync \
        >"$dir/initdb.log" 2>&1; then
        cat "$dir/initdb.log" >&2
        die "initdb failed in $dir/data (log above)"
    fi
fi

options="-p $port -k '$dir' -c listen_addresses=127.0.0.1"
options+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
# More server options for one use (the scale benchmark loads pg_stat_statements with them).
options+=" ${FARM_POSTGRES_OPTIONS:-}"
if ! as_pg "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 -o "$options" start >&2; then
    tail -n 20 "$dir/server.log" >&2 || true
    die "the server did not start (is port $port already in use? pick another: $0 start $dir PORT)"
fi

# pg_ctl -w already waits for "ready"; also make sure the TCP listener answers before handing out the URL.
for _ in $(seq 1 50); do
    if "$pgbin/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; then
        url "$port"
        exit 0
    fi
    sleep 0.1
done
tail -n 20 "$dir/server.log" >&2 || true
die "the server started but does not accept connections on 127.0.0.1:$port"
