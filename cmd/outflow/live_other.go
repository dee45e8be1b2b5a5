//go:build !linux

package main

import (
	"context"
	"errors"
	"io"
)

func live(context.Context, []string, io.Writer, io.Writer) error {
	return errors.New("live: AF_PACKET capture needs Linux")
}
