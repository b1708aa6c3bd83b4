# Starting and repairing the daemons up.sh runs by hand (lxcfs, incusd) when PID 1 is not systemd. Sourced by
# up.sh; the functions are also run on their own by test/unit/lab-daemons.test.ts.
#
# A daemon keeps the working folder it was started in. Started from a clone that is later deleted, incusd's cwd
# is gone and the tools it runs fail ("rsync: getcwd(): No such file or directory"), so daemons start from `/`,
# and one found running in a deleted folder is restarted — only the pid up.sh recorded, never by name.

# cwd_gone PID: the process is alive and its working folder was deleted.
cwd_gone() {
  local cwd
  cwd=$(readlink "/proc/$1/cwd" 2> /dev/null) || return 1
  [[ $cwd == *" (deleted)" ]]
}

# recorded_pid PIDFILE NAME: the pid in PIDFILE when that process is alive and is NAME (a reused pid is not ours).
recorded_pid() {
  local pid
  pid=$(cat "$1" 2> /dev/null) || return 1
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  [ "$(cat "/proc/$pid/comm" 2> /dev/null)" = "$2" ] || return 1
  echo "$pid"
}

# start_daemon PIDFILE LOG COMMAND...: COMMAND from `/`, in a session of its own, detached; its pid in PIDFILE.
# Every inherited descriptor above 2 is closed for it: a daemon that kept one would hold up.sh's lock, a caller's
# `flock` lock or a CI runner's output pipe for as long as it lives.
start_daemon() {
  local pidfile=$1 log=$2
  shift 2
  (
    cd / || exit 1
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if ((fd > 2)); then eval "exec $fd>&-" 2> /dev/null || true; fi
    done
    exec setsid nohup "$@" > "$log" 2>&1 < /dev/null
  ) &
  echo $! > "$pidfile"
}

# stop_daemon PIDFILE NAME: TERM the recorded pid (if it is still NAME), wait up to 60 s, then KILL it.
stop_daemon() {
  local pid
  pid=$(recorded_pid "$1" "$2") || return 0
  kill -TERM "$pid" 2> /dev/null || return 0
  for _ in $(seq 1 600); do
    kill -0 "$pid" 2> /dev/null || return 0
    sleep 0.1
  done
  kill -KILL "$pid" 2> /dev/null || true
}

# repair_if_cwd_gone PIDFILE NAME: stops the recorded daemon when its working folder was deleted (returns 0 then),
# so that the caller starts it again from `/`.
repair_if_cwd_gone() {
  local pid
  pid=$(recorded_pid "$1" "$2") || return 1
  cwd_gone "$pid" || return 1
  echo "==> restarting $2 (pid $pid): its working folder $(readlink "/proc/$pid/cwd") is gone"
  stop_daemon "$1" "$2"
}
