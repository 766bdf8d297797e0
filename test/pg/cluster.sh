#!/usr/bin/env bash
# cluster.sh: a throwaway PostgreSQL cluster for the tests, Unix socket only.
#
#   cluster.sh start DIR [--fsize KB]   initdb DIR/data and start it, its socket in DIR
#   cluster.sh stop DIR                 stop it (immediate) and remove DIR
#   cluster.sh halt DIR                 stop it (immediate: a crash), keeping its data
#   cluster.sh resume DIR [--fsize KB]  start a halted cluster again
#   cluster.sh standby DIR --from PDIR  a streaming hot standby of the running
#                                       cluster in PDIR (pg_basebackup -R), started
#   cluster.sh promote DIR              promote the standby in DIR to a primary
#   cluster.sh sync PDIR on|off         synchronous replication on the primary in
#                                       PDIR (synchronous_standby_names '*',
#                                       synchronous_commit remote_apply) or off
#
# The binaries come from `pg_config --bindir` (initdb is not on Debian's PATH).
# initdb refuses root, so as root (CI) the cluster belongs to `postgres` and
# every command runs through `runuser -u postgres`. DIR must be short: the
# socket path DIR/.s.PGSQL.5432 has to fit 107 bytes. fsync is off (the tests
# never simulate an OS crash). --fsize starts the server under `ulimit -f`
# (KB), so relation files past that size fail to grow: a full disk without
# mount privileges. A missing PostgreSQL fails here, and with it every suite
# that needs the cluster.
set -euo pipefail

usage() {
  echo "usage: $0 start|stop|halt|resume DIR [--fsize KB] | standby DIR --from PDIR |" \
    "promote DIR | sync PDIR on|off" >&2
  exit 2
}
[ $# -ge 2 ] || usage
cmd=$1 dir=$2
shift 2
fsize="" from="" mode=""
while [ $# -gt 0 ]; do
  case $1 in
    --fsize) fsize=$2; shift 2 ;;
    --from) from=$2; shift 2 ;;
    on|off) [ "$cmd" = sync ] || usage; mode=$1; shift ;;
    *) usage ;;
  esac
done

if ! command -v pg_config >/dev/null; then
  echo "$0: pg_config not found: install postgresql and libpq-dev (scripts/deps.sh)" >&2
  exit 1
fi
bindir=$(pg_config --bindir)
for b in initdb pg_ctl postgres pg_basebackup psql; do
  if [ ! -x "$bindir/$b" ]; then
    echo "$0: $bindir/$b is missing: install the postgresql package (scripts/deps.sh)" >&2
    exit 1
  fi
done
if [ ${#dir} -gt 80 ]; then
  echo "$0: $dir is too long for a Unix socket path" >&2
  exit 1
fi

as_pg() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

# A standby must allow at least the primary's max_connections and
# max_locks_per_transaction, so both get the same options.
# hot_standby_feedback keeps the primary from vacuuming rows a standby query
# still reads (fewer recovery conflicts; the README's standby setup has it).
server_opts="-k $dir -c listen_addresses='' -c fsync=off -c full_page_writes=off \
 -c max_connections=400 -c shared_buffers=128MB -c max_locks_per_transaction=256 \
 -c hot_standby_feedback=on -c max_wal_senders=10 -c wal_level=replica \
 -c log_min_messages=warning -c log_line_prefix='%m [%p] '"

do_start() {
  local limit="ulimit -f unlimited 2>/dev/null || true;"
  [ -z "$fsize" ] || limit="ulimit -f $fsize;"
  # pg_ctl -w waits until the server accepts connections.
  as_pg bash -c "$limit exec '$bindir/pg_ctl' -D '$dir/data' -l '$dir/server.log' -w -t 120 \
    -o \"$server_opts\" start" >"$dir/pg_ctl.log" 2>&1 || {
    echo "$0: the server did not start:" >&2
    cat "$dir/pg_ctl.log" "$dir/server.log" >&2 2>/dev/null || true
    exit 1
  }
}

do_stop() {
  if [ -f "$dir/data/postmaster.pid" ]; then
    as_pg "$bindir/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
  fi
}

case $cmd in
  start)
    do_stop
    rm -rf "$dir"
    mkdir -m 700 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    as_pg "$bindir/initdb" -D "$dir/data" -A trust -U postgres -E UTF8 --locale=C --no-sync \
      >"$dir/initdb.log" 2>&1 || {
      echo "$0: initdb failed:" >&2
      cat "$dir/initdb.log" >&2
      exit 1
    }
    do_start
    ;;
  halt)
    do_stop
    ;;
  resume)
    do_start
    ;;
  stop)
    do_stop
    rm -rf "$dir"
    ;;
  standby)
    # pg_basebackup -R writes standby.signal and primary_conninfo (the
    # primary's socket folder); initdb's pg_hba trusts local replication.
    [ -n "$from" ] || usage
    do_stop
    rm -rf "$dir"
    mkdir -m 700 "$dir"
    [ "$(id -u)" -ne 0 ] || chown postgres: "$dir"
    as_pg "$bindir/pg_basebackup" -h "$from" -U postgres -D "$dir/data" -R -X stream \
      -c fast --no-sync >"$dir/basebackup.log" 2>&1 || {
      echo "$0: pg_basebackup from $from failed:" >&2
      cat "$dir/basebackup.log" >&2
      exit 1
    }
    do_start
    ;;
  promote)
    as_pg "$bindir/pg_ctl" -D "$dir/data" -w -t 60 promote >"$dir/promote.log" 2>&1 || {
      echo "$0: promoting $dir failed:" >&2
      cat "$dir/promote.log" >&2
      exit 1
    }
    ;;
  sync)
    [ -n "$mode" ] || usage
    if [ "$mode" = on ]; then
      sql="ALTER SYSTEM SET synchronous_standby_names = '*';
           ALTER SYSTEM SET synchronous_commit = 'remote_apply';"
    else
      sql="ALTER SYSTEM RESET synchronous_standby_names;
           ALTER SYSTEM RESET synchronous_commit;"
    fi
    as_pg "$bindir/psql" -h "$dir" -U postgres -d postgres -q -v ON_ERROR_STOP=1 \
      -c "${sql%%;*};" -c "${sql#*;}" -c "SELECT pg_reload_conf();" >/dev/null || {
      echo "$0: setting synchronous replication $mode on $dir failed" >&2
      exit 1
    }
    ;;
  *) usage ;;
esac
