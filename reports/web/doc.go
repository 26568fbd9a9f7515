// Package web is tmon-report's pages: it comes after reports/query, which
// reads the loader's database, and serves the report UI over HTTP or
// renders the same pages as one self-contained HTML document (assets
// inlined) for reports/export, which also prints it to PDF. Each chart is
// defined once (charts.go) and drawn by the embedded uPlot, whatever shows
// the page.
package web
