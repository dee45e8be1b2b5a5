//go:build !linux

package main

import "errors"

// liveCmd is `outflow live`, which needs Linux's AF_PACKET.
type liveCmd struct {
	I []string `short:"i" name:"interface" sep:"none" help:"Interface to capture on (Linux only)."`
}

func (c *liveCmd) Run(*env) error { return errors.New("live: AF_PACKET capture needs Linux") }
