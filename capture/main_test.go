package capture

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain silences the truncation warnings that many tests provoke on purpose.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler))
	os.Exit(m.Run())
}
