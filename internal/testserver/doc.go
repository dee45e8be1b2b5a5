// Package testserver starts real servers as children of a test, so that
// Outflow's network outputs are checked against the programs users run
// rather than against our own reading of a protocol: rsyslog (UDP, TCP with
// octet counting, TLS through its gtls driver) writing each message it
// receives to a file, nginx keeping every POST body on disk, and a test PKI
// made with openssl.
//
// It is used only by tests (it imports package testing and fails or skips
// the test that calls it); no product code imports it.
//
// Each server runs from its own configuration in a temporary directory and
// listens on loopback only. A server can be stopped and started again on
// the same ports, for tests of an outage; a port asked for before the first
// start (Addr, URL) is chosen free then, outside the kernel's ephemeral
// range, so that nothing else takes it while the server is down and a
// client retrying it never connects to itself.
//
// A program that is missing skips the test with a clear message, and fails
// it when CI=true: CI must run every test.
package testserver
