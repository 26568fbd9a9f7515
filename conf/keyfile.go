package conf

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Key files (keyFile="…" of a <probe>): one key a line in hex, the first
// signs the probe's PDUs, every one is accepted by the collectors. Rolling a
// key (docs/transport.md, README) is three rollouts of the file:
// KeyFileNext (collectors and probes learn the new key, probes still sign
// with the old), KeyFileSwitch (probes sign with the new key, the old is
// still accepted), KeyFileRetire (only the new key is left).

// KeySize is the size of the keys tmon keygen makes: HMAC-SHA256's block
// size is 64, its output 32; 32 random bytes are as strong as the MAC.
const KeySize = 32

// NewKeyFile writes a key file holding one new random key; it refuses to
// overwrite a file.
func NewKeyFile(path string) error {
	k, err := newKeyHex()
	if err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	_, err = f.WriteString(k + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	return nil
}

// KeyFileNext appends a new key to the file: accepted, not yet used.
func KeyFileNext(path string) error {
	return editKeyFile(path, func(keys []string) ([]string, error) {
		k, err := newKeyHex()
		return append(keys, k), err
	})
}

// KeyFileSwitch makes the newest (last) key the signing (first) one; the
// others stay accepted.
func KeyFileSwitch(path string) error {
	return editKeyFile(path, func(keys []string) ([]string, error) {
		if len(keys) < 2 {
			return nil, errors.New("one key only: add one with -next first")
		}
		last := keys[len(keys)-1]
		return append([]string{last}, keys[:len(keys)-1]...), nil
	})
}

// KeyFileRetire keeps only the signing (first) key.
func KeyFileRetire(path string) error {
	return editKeyFile(path, func(keys []string) ([]string, error) { return keys[:1], nil })
}

func newKeyHex() (string, error) {
	b := make([]byte, KeySize)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("key: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// editKeyFile rewrites a key file atomically through edit.
func editKeyFile(path string, edit func([]string) ([]string, error)) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	keys := strings.Fields(string(b))
	if len(keys) == 0 {
		return fmt.Errorf("key file %s: no key", path)
	}
	if keys, err = edit(keys); err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".keyfile-*")
	if err != nil {
		return fmt.Errorf("key file: %w", err)
	}
	_, err = tmp.WriteString(strings.Join(keys, "\n") + "\n")
	if err == nil {
		err = tmp.Chmod(0o600)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("key file %s: %w", path, err)
	}
	return nil
}
