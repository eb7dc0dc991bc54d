#!/usr/bin/env bash
# The whole test suite: type check (the build is `tsc`, strict), the layer-direction check, the
# linter (ESLint, typescript-eslint) and the formatter's check (Prettier), then every *.test.js
# under dist/ with node's test runner. Real components (ClickHouse) are started here.
set -euo pipefail
cd "$(dirname "$0")/.."
node scripts/check-layers.mjs
npx eslint src web/src bench scripts eslint.config.js
npx prettier --check --log-level warn src web/src bench scripts
if [ -x scripts/clickhouse.sh ]; then
  eval "$(bash scripts/clickhouse.sh start)"
  trap 'bash scripts/clickhouse.sh stop >/dev/null 2>&1 || true' EXIT
fi
# Only tests whose source still exists: a test moved or deleted in src/ leaves its old .js in dist/.
mapfile -t tests < <(find dist/src -name '*.test.js' | sort | while read -r t; do src="${t#dist/}"; [ -f "${src%.js}.ts" ] && echo "$t"; done)
if [ ${#tests[@]} -eq 0 ]; then echo "no tests found" >&2; exit 1; fi
node --test --test-concurrency=2 --test-reporter=spec "$@" "${tests[@]}"
