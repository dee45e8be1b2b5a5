// Package container holds no code: it is the home of the container image
// (Dockerfile, its config outflow.yaml) and of the test that reads the
// Dockerfile with BuildKit's own parser, since no image can be built where
// the tests run.
package container
