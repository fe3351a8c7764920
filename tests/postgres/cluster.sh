#!/usr/bin/env bash
# A throw-away PostgreSQL server for the tests: a cluster in a temporary folder
# (initdb), listening on a free loopback port and a socket in that folder, with a
# random password the tests read through PGPASSFILE (as a team's nightly job
# would). Debian's `postgresql` package provides the server binaries.
#
#   tests/postgres/cluster.sh start DIR   start it in DIR (a new folder inside a temporary one);
#                                         prints the environment to export
#   tests/postgres/cluster.sh stop DIR    stop it and remove DIR
#
# initdb refuses to run as root: as root, the server runs as the `postgres` user
# the package creates.
set -euo pipefail

cmd="${1:-}"
dir="${2:-}"
[ -n "$cmd" ] && [ -n "$dir" ] || { sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 2; }

bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
[ -x "$bin/initdb" ] || { echo "no PostgreSQL server binaries (apt-get install postgresql)" >&2; exit 1; }

as=()
if [ "$(id -u)" -eq 0 ]; then as=(runuser -u postgres --); fi

case "$cmd" in
  start)
    mkdir -p "$dir"
    chmod 700 "$dir"
    mkdir -p "$dir/run"
    pw="$(head -c 24 /dev/urandom | base64 | tr -d '/+=\n')"
    printf '%s\n' "$pw" > "$dir/pwfile"
    if [ "$(id -u)" -eq 0 ]; then
      # The server user must reach DIR through its (temporary) parent folder.
      chmod 711 "$(dirname "$dir")"
      chown postgres: "$dir" "$dir/run" "$dir/pwfile"
    fi
    "${as[@]}" "$bin/initdb" -D "$dir/data" -U passback --pwfile="$dir/pwfile" -E UTF8 --no-locale \
      --auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    rm -f "$dir/pwfile"
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    # Throw-away data: no fsync (PASSBACK_PG_DURABLE=1 keeps the server's defaults, for
    # benchmarks). Enough connections for the test threads' pools.
    durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    if [ "${PASSBACK_PG_DURABLE:-}" = 1 ]; then durability=""; fi
    "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir/run -c max_connections=300 $durability" start >/dev/null \
      || { cat "$dir/server.log" >&2; exit 1; }
    # The tests' password file belongs to whoever runs them, readable only by them.
    umask 077
    printf '127.0.0.1:%s:*:passback:%s\n' "$port" "$pw" > "$dir/pgpass"
    PGPASSFILE="$dir/pgpass" "$bin/createdb" -h 127.0.0.1 -p "$port" -U passback passback_test
    echo "PASSBACK_TEST_POSTGRES=postgres://passback@127.0.0.1:$port/passback_test"
    echo "PGPASSFILE=$dir/pgpass"
    ;;
  stop)
    if [ -d "$dir/data" ]; then
      "${as[@]}" "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
  *) echo "unknown command $cmd (start or stop)" >&2; exit 2 ;;
esac
