#!/usr/bin/env bash
# Lighthouse (mobile: simulated slow 4G and a 4x slower CPU) on the resident's check-in page of a running
# app. Installs lighthouse@12 from the npm registry into a cache folder (13.x needs Node 22) and uses
# Debian's Chromium. Prints the four category scores and the load metrics.
#   bench/lighthouse.sh http://127.0.0.1:8000/c/<code>
set -euo pipefail
url="${1:?usage: bench/lighthouse.sh URL-of-a-check-in-page}"
case "$url" in http://127.*|http://localhost*) ;; *) echo "only 127.0.0.1 / localhost pages" >&2; exit 2;; esac
tools="${XDG_CACHE_HOME:-$HOME/.cache}/diemdanh-lighthouse"
mkdir -p "$tools"
[ -x "$tools/node_modules/.bin/lighthouse" ] || npm install --prefix "$tools" --silent lighthouse@12 >/dev/null
out="$(mktemp -d)/report.json"
CHROME_PATH=/usr/bin/chromium "$tools/node_modules/.bin/lighthouse" "$url" --quiet --form-factor=mobile \
  --chrome-flags="--headless=new --no-sandbox --disable-gpu --disable-background-networking --disable-component-update --disable-sync --no-first-run" \
  --output json --output-path "$out"
python3 - "$out" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
print("scores:", ", ".join(f"{k} {round(v['score'] * 100)}" for k, v in report["categories"].items()))
for key in ("first-contentful-paint", "largest-contentful-paint", "total-blocking-time",
            "cumulative-layout-shift", "speed-index", "total-byte-weight"):
    print(f"  {key}: {report['audits'][key]['displayValue']}")
PY
