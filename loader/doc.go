// Package loader moves the collector's spool (TSV logs, docs/spool.md) into
// the database: in the data flow it comes after the spool and before reports.
//
// Each complete spool file is loaded exactly once: its rows, its malformed
// lines and its name, size and checksum (table loaded_files) are written in one
// transaction, and the file is archived (gzip) only after that commit, so that a
// crash at any moment followed by a rerun gives the same tables as a clean run.
//
// Aggregated observation types (owd_stats, owd_hist, owd_metrics) are merged
// into tables at 1 minute, 1 hour and 1 day; every statistic is kept as count,
// sum, sum of squares, min and max, histograms as counts per slice or per
// log-linear bucket, so each coarser table is exactly the merge of the finer
// one; quantiles and ratios are recomputed from the merged values. The merge is done in Go, with exact
// arithmetic for sums of squares, so both databases give identical results.
// Individual records (events, per-packet one-way records) are plain rows.
//
// The database is SQLite (embedded, default) or MySQL/MariaDB; everything that
// differs between them (column types, upsert syntax, partitions, retention, the
// loader lock) is in the dialect interface (dialect.go) and its two
// implementations. The schema and how to add a record type are documented in
// docs/loader.md; the record types themselves are declared in types.go.
package loader
