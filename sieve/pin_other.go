//go:build !linux

package sieve

import "errors"

func pin(int) (func(), error) { return nil, errors.New("CPU pinning is only supported on Linux") }
