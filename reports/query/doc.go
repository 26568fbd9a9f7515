// Package query is the report's access to the database the loader fills
// (docs/loader.md): it comes after the loader and before the report pages
// (reports/web) and exports (reports/export). It turns a selection (period,
// collector, class, flow, hop pair) into the figures each page and chart
// shows, reading only: SQLite is opened read-only, MySQL/MariaDB through the
// read-only account.
//
// Every figure is counted once with redundant collectors: without a
// collector in the selection the queries read the rows that the loader's
// owd_pick_* views choose (one collector per flow, interval and hop pair);
// with one, that collector's own rows.
package query
