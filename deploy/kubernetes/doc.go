// Package kubernetes holds no code: it is the home of the manifests that
// run Outflow as a DaemonSet, and of the test that decodes each of them
// strictly into the Kubernetes API's types and checks what they promise.
package kubernetes
