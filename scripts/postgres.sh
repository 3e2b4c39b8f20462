#!/usr/bin/env bash
# A throwaway PostgreSQL 15 server for trying and testing plans that read PostgreSQL.
#   scripts/postgres.sh start DIR [PORT]   initialise DIR (once) and start the server
#   scripts/postgres.sh stop DIR           stop it (DIR is left for rm -rf)
# The server listens on a unix socket in DIR and on 127.0.0.1:PORT (default 55432). Over the
# socket the user closedloop needs no password; over TCP it needs the one in DIR/password.
# `start` prints the libpq variables that reach it, e.g.  eval "$(scripts/postgres.sh start /tmp/pg)"
# initdb refuses to run as root: as root, the server runs as the postgres system user.
set -euo pipefail
command="${1:?usage: scripts/postgres.sh start|stop DIR [PORT]}"
dir="${2:?usage: scripts/postgres.sh start|stop DIR [PORT]}"
port="${3:-55432}"
bin="${PG_BIN:-/usr/lib/postgresql/15/bin}"
if [ ! -x "$bin/pg_ctl" ]; then
  echo "PostgreSQL 15 is not installed ($bin/pg_ctl missing): apt-get install postgresql-15" >&2
  exit 1
fi
as_owner=()
if [ "$(id -u)" -eq 0 ]; then
  as_owner=(runuser -u postgres --)
fi
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
cd "$dir"  # the server's user may not reach the caller's folder
case "$command" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      [ ${#as_owner[@]} -eq 0 ] || chown postgres "$dir"
      chmod 700 "$dir"
      python3 -c 'import secrets; print(secrets.token_hex(16))' >"$dir/password"
      chmod 600 "$dir/password"
      [ ${#as_owner[@]} -eq 0 ] || chown postgres "$dir/password"
      "${as_owner[@]}" "$bin/initdb" -D "$dir/data" -U closedloop --pwfile="$dir/password" \
        --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log"
    fi
    if "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      # already running: say so and print the variables of the server as it runs
      running_port="$(sed -n 4p "$dir/data/postmaster.pid")"
      echo "PostgreSQL is already running in $dir on port $running_port" >&2
      echo "export PGHOST=$dir PGPORT=$running_port PGUSER=closedloop PGDATABASE=postgres"
      exit 0
    fi
    # a server for tests: small, and no fsync (its data is thrown away)
    options="-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir"
    options+=" -c fsync=off -c full_page_writes=off -c shared_buffers=32MB -c max_connections=20"
    "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 -o "$options" \
      start >/dev/null || { tail -n 20 "$dir/server.log" >&2; exit 1; }
    echo "export PGHOST=$dir PGPORT=$port PGUSER=closedloop PGDATABASE=postgres"
    ;;
  stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
      "${as_owner[@]}" "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    fi
    ;;
  *)
    echo "usage: scripts/postgres.sh start|stop DIR [PORT]" >&2
    exit 2
    ;;
esac
