#!/bin/sh
# Remakes the README's screenshots (docs/report-overview.png,
# docs/report-pair.png) from the demo's database: run `make demo` first.
# Needs chromium (Debian package).
set -eu
cd "$(dirname "$0")/.."
DB=demo-out/tmon.db
[ -f "$DB" ] || { echo "screenshots.sh: $DB missing: run make demo first" >&2; exit 1; }
CH=$(command -v chromium || command -v chromium-browser || command -v google-chrome) || { echo "screenshots.sh: chromium not found" >&2; exit 1; }
ADDR=127.0.0.1:18099
bin/tmon-report -db "sqlite:$DB" -listen "$ADDR" -log-level warn &
PID=$!
trap 'kill $PID 2>/dev/null' EXIT
i=0
until curl -sf "http://$ADDR/?period=all" >/dev/null; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "screenshots.sh: tmon-report did not answer" >&2; exit 1; }
	sleep 0.1
done
shot() { # size file url
	"$CH" --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size="$1" \
		--virtual-time-budget=3000 --screenshot="$2" "http://$ADDR$3" 2>/dev/null
}
shot 1280,420 docs/report-overview.png "/?period=all"
shot 1280,2150 docs/report-pair.png "/pair?class=site1-to-site2&hop_from=A&hop_to=B&period=all"
echo "screenshots.sh: wrote docs/report-overview.png and docs/report-pair.png"
