#!/usr/bin/env bash
# Starts (or reuses) a private ClickHouse server for wallscope's tests and benchmarks, listening
# only on 127.0.0.1, with its data in a temp dir. `start` prints `export WALLSCOPE_CLICKHOUSE_URL=...`
# lines for `eval`; `status` says whether it answers.
# Several test runs may share one server (one machine, several checkouts or engineers): `start`
# takes a lease for the calling process ($PPID), `stop` returns it, and the server stops only when
# no live process holds a lease. A server this script did not start is never stopped.
# Debian 12 ships clickhouse-server 18.16: the config uses only keys that release knows.
set -euo pipefail
dir="${WALLSCOPE_CLICKHOUSE_DIR:-/tmp/wallscope-clickhouse}"
port="${WALLSCOPE_CLICKHOUSE_PORT:-18123}"
tcp_port=$((port + 1))
url="http://127.0.0.1:${port}"

answers() { curl -fsS --max-time 2 "${url}/ping" 2>/dev/null | grep -q Ok; }

bin=""
for b in clickhouse-server /usr/sbin/clickhouse-server clickhouse /usr/bin/clickhouse; do
  if command -v "$b" >/dev/null 2>&1; then bin="$(command -v "$b")"; break; fi
done

lease() { mkdir -p "$dir/leases" && : > "$dir/leases/$PPID"; }

live_leases() {
  local n=0 f
  for f in "$dir"/leases/*; do
    [ -e "$f" ] || continue
    if kill -0 "$(basename "$f")" 2>/dev/null; then n=$((n + 1)); else rm -f "$f"; fi
  done
  echo "$n"
}

start() {
  if answers; then lease; echo "export WALLSCOPE_CLICKHOUSE_URL=${url}"; return 0; fi
  if [ -z "$bin" ]; then echo "clickhouse.sh: no clickhouse-server binary (apt-get install clickhouse-server)" >&2; exit 1; fi
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/log"
  cat > "$dir/config.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>$dir/log/server.log</log><errorlog>$dir/log/server.err.log</errorlog><size>10M</size><count>2</count></logger>
  <http_port>${port}</http_port>
  <tcp_port>${tcp_port}</tcp_port>
  <listen_host>127.0.0.1</listen_host>
  <max_connections>256</max_connections>
  <keep_alive_timeout>10</keep_alive_timeout>
  <max_concurrent_queries>64</max_concurrent_queries>
  <uncompressed_cache_size>67108864</uncompressed_cache_size>
  <mark_cache_size>67108864</mark_cache_size>
  <path>$dir/data/</path>
  <tmp_path>$dir/tmp/</tmp_path>
  <user_files_path>$dir/user_files/</user_files_path>
  <users_config>$dir/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <timezone>UTC</timezone>
  <mlock_executable>false</mlock_executable>
</yandex>
XML
  cat > "$dir/users.xml" <<XML
<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users><default><password></password><networks><ip>127.0.0.1</ip><ip>::1</ip></networks><profile>default</profile><quota>default</quota></default></users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
XML
  if [ "$(basename "$bin")" = clickhouse ]; then
    nohup "$bin" server --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
  else
    nohup "$bin" --config-file="$dir/config.xml" >"$dir/log/stdout.log" 2>&1 &
  fi
  echo $! > "$dir/pid"
  for _ in $(seq 1 100); do
    if answers; then lease; echo "export WALLSCOPE_CLICKHOUSE_URL=${url}"; return 0; fi
    if ! kill -0 "$(cat "$dir/pid")" 2>/dev/null; then break; fi
    sleep 0.3
  done
  echo "clickhouse.sh: server did not answer on ${url}; see $dir/log/" >&2
  tail -n 20 "$dir/log/stdout.log" "$dir/log/server.err.log" >&2 2>/dev/null || true
  exit 1
}

stop() {
  rm -f "$dir/leases/$PPID"
  if [ "$(live_leases)" -gt 0 ]; then return 0; fi
  if [ -f "$dir/pid" ]; then
    pid="$(cat "$dir/pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid"
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    fi
    rm -f "$dir/pid"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) if answers; then echo "up ${url}"; else echo "down"; exit 1; fi ;;
  *) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
