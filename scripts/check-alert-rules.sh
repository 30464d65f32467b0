#!/usr/bin/env bash
# Checks deploy/prometheus/alerts.yml and runs its unit tests
# (deploy/prometheus/alerts.test.yml) with promtool.
#
# promtool comes from Debian's `prometheus` package. When it is not on PATH,
# the package is downloaded (not installed: no daemon is started) and only
# promtool is unpacked into ~/.cache/gc-sidecar/promtool.
set -euo pipefail
cd "$(dirname "$0")/.."

promtool_bin() {
    if command -v promtool >/dev/null 2>&1; then
        command -v promtool
        return
    fi
    local cache="${XDG_CACHE_HOME:-$HOME/.cache}/gc-sidecar/promtool"
    if [ ! -x "$cache/usr/bin/promtool" ]; then
        echo "promtool not found: unpacking it from Debian's prometheus package into $cache" >&2
        local work
        work="$(mktemp -d)"
        trap 'rm -rf "$work"' RETURN
        if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
            local sudo=""
            [ "$(id -u)" -ne 0 ] && sudo="sudo"
            $sudo apt-get update -qq
            (cd "$work" && apt-get download prometheus >/dev/null)
        fi
        mkdir -p "$cache"
        dpkg-deb -x "$work"/prometheus_*.deb "$cache"
    fi
    echo "$cache/usr/bin/promtool"
}

promtool="$(promtool_bin)"
"$promtool" check rules deploy/prometheus/alerts.yml
(cd deploy/prometheus && "$promtool" test rules alerts.test.yml)

# Every query of the Grafana dashboard must parse: each becomes a recording
# rule ($job as any job) that promtool checks.
if command -v python3 >/dev/null 2>&1; then
    queries="$(mktemp --suffix=.yml)"
    trap 'rm -f "$queries"' EXIT
    python3 - deploy/grafana/gc-sidecar.json > "$queries" <<'PY'
import json, sys
dashboard = json.load(open(sys.argv[1]))
exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", []) if "expr" in t]
if not exprs:
    sys.exit("no queries in the dashboard")
print("groups:\n  - name: dashboard-queries\n    rules:")
for i, expr in enumerate(exprs):
    print("      - record: dashboard_query_%d\n        expr: %s" % (i, json.dumps(expr.replace("$job", ".*"))))
PY
    echo "Checking the queries of deploy/grafana/gc-sidecar.json"
    "$promtool" check rules "$queries"
else
    echo "python3 not found: the dashboard's queries are not checked" >&2
fi
