package query

import (
	"database/sql"
	"strings"

	_ "github.com/go-sql-driver/mysql"
)

// resetMySQL drops every view and table of the report test database.
func resetMySQL(dsn string) error {
	db, err := sql.Open("mysql", dsn)
	if err != nil {
		return err
	}
	defer db.Close()
	if err := db.Ping(); err != nil {
		return err
	}
	for _, kind := range []string{"VIEW", "BASE TABLE"} {
		rows, err := db.Query("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() AND TABLE_TYPE = ?", kind)
		if err != nil {
			return err
		}
		var names []string
		for rows.Next() {
			var n string
			if err := rows.Scan(&n); err != nil {
				rows.Close()
				return err
			}
			names = append(names, "`"+n+"`")
		}
		rows.Close()
		if len(names) > 0 {
			if _, err := db.Exec("DROP " + strings.TrimPrefix(kind, "BASE ") + " " + strings.Join(names, ",")); err != nil {
				return err
			}
		}
	}
	return nil
}
