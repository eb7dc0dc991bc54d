#!/usr/bin/env bash
# Sets up a bare Debian 12 machine for wallscope: Debian packages (as root), npm packages, the
# TypeScript build and the explorer's static build. Idempotent and quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { [ "${WALLSCOPE_QUIET:-}" = 1 ] || echo "setup: $*" >&2; }

# Debian packages: chromium (explorer tests), nftables (lab null routing), dnsutils (dig, for the
# benchmark), curl, iproute2 (network namespaces), clickhouse-server (the scale store's tests),
# shadowsocks-libev (a real circumvention client through the lab's FET censor),
# libpcap-dev (the `cap` npm addon builds against it: packet capture and injection for the netns lab,
# `measure --capture` and `locate`), tcpdump (an independent witness in the netns tests), procps (sysctl),
# iptables (the netns lab's ESNI drop matches ClientHellos in the kernel with the xtables bpf match),
# fonts-wqy-microhei (CJK glyphs: the platform pages' IP territory labels and notices in chromium screenshots),
# dnsperf (bench/scan-dns.ts measures `scan dns` side by side with it).
pkgs=(chromium nftables dnsutils curl iproute2 clickhouse-server clickhouse-client fonts-dejavu-core fonts-wqy-microhei shadowsocks-libev libpcap-dev tcpdump procps iptables dnsperf)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "installing Debian packages: ${missing[*]}"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: warning: missing Debian packages (${missing[*]}); run as root to install them." >&2
    echo "setup: the tests that need them will fail." >&2
  fi
fi

# npm packages, exactly as locked.
if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  say "installing npm packages"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The udp-batch addon of `scan dns` (native/udp-batch: sendmmsg/recvmmsg in C against Node-API),
# built from source by npm's own node-gyp against the installed Node's headers (include/node beside
# its binary, e.g. /usr/include/node from Debian's or NodeSource's nodejs): nothing is downloaded.
# Without the addon the scan falls back to Node's dgram (slower); its tests need it built.
udp_batch=native/udp-batch/build/Release/udp_batch.node
if [ ! -f "$udp_batch" ] || [ -n "$(find native/udp-batch/src native/udp-batch/binding.gyp -newer "$udp_batch" 2>/dev/null)" ]; then
  nodedir="$(node -p "require('path').resolve(process.execPath, '..', '..')")"
  if [ ! -f "$nodedir/include/node/node_api.h" ]; then
    echo "setup: Node's headers are not in $nodedir/include/node (node_api.h); install them to build native/udp-batch" >&2
    exit 1
  fi
  gyp="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$gyp" ] || gyp="$(command -v node-gyp || true)"
  if [ -z "$gyp" ]; then
    echo "setup: node-gyp not found (it comes with npm); cannot build native/udp-batch" >&2
    exit 1
  fi
  say "building native/udp-batch (node-gyp, headers from $nodedir/include/node)"
  (cd native/udp-batch && node "$gyp" rebuild --nodedir="$nodedir" --loglevel=error >/dev/null)
fi

say "building (tsc)"
# Robustness: drop compiled files whose source is gone, so a deleted test never runs stale.
if [ -d dist/src ]; then
  find dist/src dist/bench -name '*.js' 2>/dev/null | while read -r js; do
    ts="${js#dist/}"; ts="${ts%.js}.ts"; [ -f "$ts" ] || rm -f "$js" "$js.map"
  done
fi
npx tsc -p tsconfig.json
if [ -f web/vite.config.ts ]; then
  say "type-checking and building the explorer (vite)"
  npx tsc -p web/tsconfig.json --noEmit
  npx vite build web --logLevel error
fi
