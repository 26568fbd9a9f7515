#!/bin/sh
# Install (if missing), start (if not running) and prepare a local MariaDB for
# the loader tests. Idempotent: safe to run on every CI run.
#
# It creates databases tmon_test, tmon_test_report, tmon_test_web and the two accounts documented in
# docs/loader.md, with exactly the documented grants, so that the tests load
# through the minimal loading account:
#
#   tmon_load   / tmon-load-pw    loading account (schema, partitions, rows)
#   tmon_report / tmon-report-pw  read-only account for reports
#
# Then the tests are run with:
#
#   TMON_TEST_MYSQL_DSN='tmon_load:tmon-load-pw@tcp(127.0.0.1:3306)/tmon_test'
#   TMON_TEST_MYSQL_RO_DSN='tmon_report:tmon-report-pw@tcp(127.0.0.1:3306)/tmon_test'
set -eu

SOCK=/run/mysqld/mysqld.sock

if ! command -v mariadbd >/dev/null 2>&1 && ! command -v mysqld >/dev/null 2>&1; then
	echo "mariadb.sh: installing mariadb-server" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q >/dev/null
	apt-get install -y -q mariadb-server >/dev/null
fi

ready() { mariadb-admin --socket="$SOCK" -uroot status >/dev/null 2>&1; }

if ! ready; then
	echo "mariadb.sh: starting mariadb" >&2
	mkdir -p /run/mysqld
	chown mysql:mysql /run/mysqld 2>/dev/null || true
	# The service script is refused in containers without an init system
	# (policy-rc.d); mysqld_safe works everywhere.
	if ! service mariadb start >/dev/null 2>&1; then
		nohup mysqld_safe --user=mysql >/tmp/mysqld_safe.log 2>&1 &
	fi
	i=0
	until ready; do
		i=$((i + 1))
		if [ "$i" -gt 60 ]; then
			echo "mariadb.sh: mariadb did not become ready in 60 s" >&2
			exit 1
		fi
		sleep 1
	done
fi

# tmon_test for the loader tests; the report tests' own databases
# (<DSN's database>_report for reports/query, _web for reports/web): go test
# runs packages in parallel, and the loader tests drop tmon_test's tables.
DBS="tmon_test tmon_test_report tmon_test_web"
{
	cat <<'EOF'
CREATE USER IF NOT EXISTS 'tmon_load'@'localhost' IDENTIFIED BY 'tmon-load-pw';
CREATE USER IF NOT EXISTS 'tmon_load'@'127.0.0.1' IDENTIFIED BY 'tmon-load-pw';
CREATE USER IF NOT EXISTS 'tmon_report'@'localhost' IDENTIFIED BY 'tmon-report-pw';
CREATE USER IF NOT EXISTS 'tmon_report'@'127.0.0.1' IDENTIFIED BY 'tmon-report-pw';
EOF
	for db in $DBS; do
		# Loading account: docs/loader.md "Database accounts". No DELETE:
		# retention drops partitions (DROP), it never deletes rows.
		# Read-only account for reports: SELECT.
		cat <<EOF
CREATE DATABASE IF NOT EXISTS $db;
GRANT SELECT, INSERT, UPDATE, CREATE, CREATE VIEW, ALTER, DROP, INDEX ON $db.* TO 'tmon_load'@'localhost';
GRANT SELECT, INSERT, UPDATE, CREATE, CREATE VIEW, ALTER, DROP, INDEX ON $db.* TO 'tmon_load'@'127.0.0.1';
GRANT SELECT ON $db.* TO 'tmon_report'@'localhost';
GRANT SELECT ON $db.* TO 'tmon_report'@'127.0.0.1';
EOF
	done
	echo "FLUSH PRIVILEGES;"
} | mariadb --socket="$SOCK" -uroot
echo "mariadb.sh: ready (databases $DBS; accounts tmon_load, tmon_report)" >&2
