// Package packaging holds what installs tmon as a service: systemd units
// for the probe, the collector, the loader (a timer) and the report server,
// the tmon user (sysusers.d), a logrotate sample; `make install` puts them
// with the commands (docs/operations.md). It has no Go code: its test
// installs with make and checks the units with systemd-analyze verify.
package packaging
