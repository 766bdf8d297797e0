# shellcheck shell=bash
# lib.sh: what the bench scripts (compare.sh, fleet.sh) share; sourced, not
# run. The caller sets ZEOLITE (the zeolite executable) first.

need_zeolite() { # need_zeolite SCRIPT: exit 2 unless $ZEOLITE is an executable
  if [ ! -x "$ZEOLITE" ]; then
    echo "$1: no zeolite executable at $ZEOLITE (set ZEOLITE=...)" >&2
    exit 2
  fi
}

# default_runzeo: RUNZEO, when unset, is "$ZEO_PY -m ZEO.runzeo" with ZEO_PY
# set, else /work/venv/bin/runzeo when there is one, else empty.
default_runzeo() {
  if [ -n "${RUNZEO:-}" ]; then return; fi
  if [ -n "${ZEO_PY:-}" ]; then RUNZEO="$ZEO_PY -m ZEO.runzeo"
  elif [ -x /work/venv/bin/runzeo ]; then RUNZEO=/work/venv/bin/runzeo
  else RUNZEO=""; fi
}

free_port() { # free_port: a TCP port nothing listens on, from 18400..18499
  local p
  for p in $(seq 18400 18499 | shuf); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
  done
  return 1
}

accepting() { # accepting ADDR: 0 when a server answers at ADDR
  if [[ $1 == */* ]]; then
    [ -S "$1" ] && "$ZEOLITE" last-tid --timeout 1 "$1" >/dev/null 2>&1
  else
    (exec 3<>"/dev/tcp/${1%:*}/${1##*:}") 2>/dev/null
  fi
}

wait_accepting() { # wait_accepting ADDR PID
  for _ in $(seq 1 200); do
    accepting "$1" && return 0
    kill -0 "$2" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

# cpu_ticks PID...: user+system clock ticks of these processes and every
# process under them (a runzeo wrapper's child does the work, a PostgreSQL
# postmaster's backends do), each counted once, with those of the children
# they have reaped (a backend that ended between two readings still
# counts: the sum never goes down); /proc/PID/stat sums all threads. Only
# /proc is read (no procps in a minimal system).
cpu_ticks() {
  local f s pid p total=0 roots=" $* "
  local -A parent ticks
  for f in /proc/[0-9]*/stat; do
    read -r s 2>/dev/null <"$f" || continue
    pid=${s%% *}
    # The command name (field 2) may hold spaces: fields 4 (ppid), 14 to 17
    # (utime, stime, cutime, cstime) are the 2nd and 12th to 15th after its
    # closing parenthesis.
    # shellcheck disable=SC2086 # split on purpose: numbers and a state letter
    set -- ${s##*) }
    parent[$pid]=$2
    ticks[$pid]=$((${12} + ${13} + ${14} + ${15}))
  done
  for pid in "${!ticks[@]}"; do
    p=$pid
    while [[ $roots != *" $p "* ]] && [ -n "${parent[$p]:-}" ]; do p=${parent[$p]}; done
    [[ $roots != *" $p "* ]] || total=$((total + ticks[$pid]))
  done
  echo "$total"
}
# shellcheck disable=SC2034 # the callers' (clock ticks a second)
hz=$(getconf CLK_TCK)

loadavg() { cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo "?"; }
