#!/usr/bin/env bash
# Start or stop a private PostgreSQL server for the tests, from Debian's packages.
# "start" prints the export line for SENFORMS_TEST_POSTGRES_URL; "stop" stops it.
set -euo pipefail
dir=/tmp/senforms-pg
port=${SENFORMS_TEST_PG_PORT:-54329}
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
case "${1:-start}" in
  start)
    if [ ! -f "$dir/data/PG_VERSION" ]; then
      rm -rf "$dir"; mkdir -p "$dir"
      [ "$(id -u)" -eq 0 ] && chown postgres "$dir"
      as_pg "$bin/initdb" -D "$dir/data" -U senforms --auth=trust >/dev/null
    fi
    if ! as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
      as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/log" -w \
        -o "-p $port -k $dir -c listen_addresses=''" start >/dev/null
    fi
    echo "export SENFORMS_TEST_POSTGRES_URL='postgresql+psycopg://senforms@/postgres?host=$dir&port=$port'"
    ;;
  stop)
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null 2>&1 || true
    ;;
esac
