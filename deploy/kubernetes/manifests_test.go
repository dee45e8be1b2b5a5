package kubernetes

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/outflow-sensor/outflow/sensor"
	"gopkg.in/yaml.v3"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	kjson "sigs.k8s.io/json"
	kyaml "sigs.k8s.io/yaml"
)

const (
	// configPath is the file the image's entrypoint reads
	// (deploy/container/Dockerfile).
	configPath = "/etc/outflow/outflow.yaml"
	stateDir   = "/var/lib/outflow"
)

// manifests are the objects of this directory, one a file, by kind.
type manifests struct {
	namespace      *corev1.Namespace
	serviceAccount *corev1.ServiceAccount
	configMap      *corev1.ConfigMap
	daemonSet      *appsv1.DaemonSet
}

// TestManifests decodes every manifest as the API server does with
// strict field validation (unknown, duplicate and wrongly cased fields are
// errors) into the Kubernetes API's own types, then checks what the
// README promises: a DaemonSet on the node's network whose sensor runs as
// a non-root user with CAP_NET_RAW only, a read-only root file system, no
// privilege escalation, resources, its state on the node, probes on
// /healthz and /readyz and Prometheus annotations on the metrics port,
// which the ConfigMap's outflow.yaml (read by the sensor's own loader)
// listens on.
func TestManifests(t *testing.T) {
	m := readManifests(t)
	if m.namespace == nil || m.serviceAccount == nil || m.configMap == nil || m.daemonSet == nil {
		t.Fatalf("want a Namespace, a ServiceAccount, a ConfigMap and a DaemonSet, have %+v", m)
	}
	ns := m.namespace.Name
	for _, o := range []metav1.Object{m.serviceAccount, m.configMap, m.daemonSet} {
		if o.GetNamespace() != ns {
			t.Errorf("%s is in namespace %q, not %q", o.GetName(), o.GetNamespace(), ns)
		}
	}
	if m.namespace.Labels["pod-security.kubernetes.io/enforce"] != "privileged" {
		t.Errorf("the namespace does not allow what the sensor needs (hostNetwork, hostPath, NET_RAW): label pod-security.kubernetes.io/enforce=privileged")
	}

	ds := m.daemonSet
	pod := &ds.Spec.Template.Spec
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() || !sel.Matches(labels.Set(ds.Spec.Template.Labels)) {
		t.Errorf("the DaemonSet's selector %v does not select its pods' labels %v", ds.Spec.Selector, ds.Spec.Template.Labels)
	}
	if !pod.HostNetwork {
		t.Error("hostNetwork is not true: the pod would not see the node's SPAN interface")
	}
	if pod.DNSPolicy != corev1.DNSClusterFirstWithHostNet {
		t.Errorf("dnsPolicy %q: with hostNetwork, ClusterFirstWithHostNet resolves cluster names", pod.DNSPolicy)
	}
	if pod.ServiceAccountName != m.serviceAccount.Name {
		t.Errorf("serviceAccountName %q, want %q", pod.ServiceAccountName, m.serviceAccount.Name)
	}
	if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
		t.Error("the pod mounts a service-account token it never uses")
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want the sensor alone", len(pod.Containers))
	}
	c := &pod.Containers[0]
	uid, gid := checkSensorSecurity(t, pod.SecurityContext, c)
	if len(c.Command)+len(c.Args) > 0 {
		t.Errorf("the container sets command %q and args %q: the image's entrypoint reads %s", c.Command, c.Args, configPath)
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if _, ok := c.Resources.Requests[r]; !ok {
			t.Errorf("no %s request", r)
		}
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Error("no memory limit")
	}

	mounts := checkVolumes(t, pod, c, m.configMap.Name)
	for _, ic := range pod.InitContainers {
		checkInit(t, &ic, uid, gid)
	}

	port := metricsPort(t, c)
	checkProbe(t, "liveness", c.LivenessProbe, "/healthz", port)
	checkProbe(t, "readiness", c.ReadinessProbe, "/readyz", port)
	ann := ds.Spec.Template.Annotations
	want := map[string]string{"prometheus.io/scrape": "true", "prometheus.io/port": strconv.Itoa(int(port.ContainerPort)), "prometheus.io/path": "/metrics"}
	for k, v := range want {
		if ann[k] != v {
			t.Errorf("pod annotation %s: %q, want %q", k, ann[k], v)
		}
	}

	checkConfig(t, m.configMap, port.ContainerPort, mounts)
}

// readManifests decodes each YAML file of the directory strictly into the
// type its kind names.
func readManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	var m manifests
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if n := documents(t, f, b); n != 1 {
			t.Fatalf("%s: %d YAML documents, want one object a file", f, n)
		}
		var tm metav1.TypeMeta
		if err := kyaml.Unmarshal(b, &tm); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		var obj any
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			m.namespace = &corev1.Namespace{}
			obj = m.namespace
		case "v1 ServiceAccount":
			m.serviceAccount = &corev1.ServiceAccount{}
			obj = m.serviceAccount
		case "v1 ConfigMap":
			m.configMap = &corev1.ConfigMap{}
			obj = m.configMap
		case "apps/v1 DaemonSet":
			m.daemonSet = &appsv1.DaemonSet{}
			obj = m.daemonSet
		default:
			t.Fatalf("%s: %s %s is not a kind this test knows", f, tm.APIVersion, tm.Kind)
		}
		if err := decodeStrict(b, obj); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if t.Failed() {
		t.FailNow() // the checks below would read what failed to decode
	}
	return m
}

// decodeStrict is the API server's strict field validation: YAML to JSON
// refusing duplicate keys, then a case-sensitive decode refusing unknown
// and duplicate fields.
func decodeStrict(b []byte, obj any) error {
	j, err := kyaml.YAMLToJSONStrict(b)
	if err != nil {
		return err
	}
	strict, err := kjson.UnmarshalStrict(j, obj, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
	if err != nil {
		return err
	}
	return errors.Join(strict...)
}

// documents counts a file's YAML documents: the JSON conversion reads only
// the first, and a second would be applied unchecked.
func documents(t *testing.T, name string, b []byte) int {
	t.Helper()
	dec := yaml.NewDecoder(bytes.NewReader(b))
	n := 0
	for {
		var v yaml.Node
		err := dec.Decode(&v)
		if err == io.EOF {
			return n
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		n++
	}
}

// checkSensorSecurity checks the sensor container's effective security
// context (the container's fields over the pod's) and returns its uid and
// gid.
func checkSensorSecurity(t *testing.T, pod *corev1.PodSecurityContext, c *corev1.Container) (uid, gid int64) {
	t.Helper()
	if pod == nil {
		pod = &corev1.PodSecurityContext{}
	}
	sc := c.SecurityContext
	if sc == nil {
		t.Fatal("the sensor container has no securityContext")
	}
	nonRoot := cmpOr(sc.RunAsNonRoot, pod.RunAsNonRoot)
	u, g := cmpOr(sc.RunAsUser, pod.RunAsUser), cmpOr(sc.RunAsGroup, pod.RunAsGroup)
	switch {
	case nonRoot == nil || !*nonRoot:
		t.Error("runAsNonRoot is not true")
	case u == nil || *u == 0:
		t.Error("runAsUser is not a non-root uid: the kubelet would take the image's")
	case g == nil || *g == 0:
		t.Error("runAsGroup is not a non-root gid")
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
		t.Error("allowPrivilegeEscalation is not false")
	}
	if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Error("readOnlyRootFilesystem is not true")
	}
	if sc.Privileged != nil && *sc.Privileged {
		t.Error("the sensor is privileged")
	}
	if caps := sc.Capabilities; caps == nil || !slices.Equal(caps.Drop, []corev1.Capability{"ALL"}) ||
		!slices.Equal(caps.Add, []corev1.Capability{"NET_RAW"}) {
		t.Errorf("capabilities %+v, want drop [ALL] add [NET_RAW]", caps)
	}
	if u == nil || g == nil {
		return 0, 0
	}
	return *u, *g
}

// checkInit allows an init container one job: giving the state directory
// to the sensor's uid and gid, with CHOWN and FOWNER and nothing else.
func checkInit(t *testing.T, ic *corev1.Container, uid, gid int64) {
	t.Helper()
	sc := ic.SecurityContext
	if sc == nil || sc.Capabilities == nil {
		t.Fatalf("init container %s: no securityContext with capabilities", ic.Name)
	}
	if !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("init container %s: drops %v, want [ALL]", ic.Name, sc.Capabilities.Drop)
	}
	for _, c := range sc.Capabilities.Add {
		if c != "CHOWN" && c != "FOWNER" {
			t.Errorf("init container %s: adds %s", ic.Name, c)
		}
	}
	if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		t.Errorf("init container %s: allowPrivilegeEscalation must be false and readOnlyRootFilesystem true", ic.Name)
	}
	script := strings.Join(append(slices.Clone(ic.Command), ic.Args...), " ")
	if want := fmt.Sprintf("chown %d:%d %s", uid, gid, stateDir); !strings.Contains(script, want) {
		t.Errorf("init container %s runs %q, which does not %q", ic.Name, script, want)
	}
	if len(ic.VolumeMounts) != 1 || ic.VolumeMounts[0].MountPath != stateDir {
		t.Errorf("init container %s mounts %+v, want the state directory alone", ic.Name, ic.VolumeMounts)
	}
}

// checkVolumes checks the config and state volumes of the sensor and
// returns its writable mount paths.
func checkVolumes(t *testing.T, pod *corev1.PodSpec, c *corev1.Container, configMap string) (writable []string) {
	t.Helper()
	vols := map[string]corev1.Volume{}
	for _, v := range pod.Volumes {
		vols[v.Name] = v
	}
	var config, state bool
	for _, vm := range c.VolumeMounts {
		v, ok := vols[vm.Name]
		if !ok {
			t.Errorf("mount %s names no volume", vm.Name)
			continue
		}
		switch {
		case v.ConfigMap != nil:
			if vm.MountPath == path.Dir(configPath) && v.ConfigMap.Name == configMap && len(v.ConfigMap.Items) == 0 {
				config = true
			}
			if !vm.ReadOnly {
				t.Errorf("the config is mounted writable at %s", vm.MountPath)
			}
		case v.HostPath != nil:
			if v.HostPath.Path == stateDir && vm.MountPath == stateDir && v.HostPath.Type != nil &&
				*v.HostPath.Type == corev1.HostPathDirectoryOrCreate {
				state = true
			}
		}
		if !vm.ReadOnly {
			writable = append(writable, vm.MountPath)
		}
	}
	if !config {
		t.Errorf("ConfigMap %s is not mounted at %s", configMap, path.Dir(configPath))
	}
	if !state {
		t.Errorf("no hostPath %s (DirectoryOrCreate) mounted at %s", stateDir, stateDir)
	}
	return writable
}

// metricsPort is the container port named metrics; with hostNetwork it is
// the node's port too, so hostPort must equal it.
func metricsPort(t *testing.T, c *corev1.Container) corev1.ContainerPort {
	t.Helper()
	for _, p := range c.Ports {
		if p.Name == "metrics" {
			if p.HostPort != 0 && p.HostPort != p.ContainerPort {
				t.Errorf("hostPort %d differs from containerPort %d, which hostNetwork does not allow", p.HostPort, p.ContainerPort)
			}
			return p
		}
	}
	t.Fatal("no container port named metrics")
	return corev1.ContainerPort{}
}

func checkProbe(t *testing.T, what string, p *corev1.Probe, path string, port corev1.ContainerPort) {
	t.Helper()
	if p == nil || p.HTTPGet == nil {
		t.Errorf("no %s probe by HTTP GET", what)
		return
	}
	if p.HTTPGet.Path != path {
		t.Errorf("%s probe on %s, want %s", what, p.HTTPGet.Path, path)
	}
	if pp := p.HTTPGet.Port; !(pp.Type == intstr.String && pp.StrVal == port.Name) && !(pp.Type == intstr.Int && pp.IntVal == port.ContainerPort) {
		t.Errorf("%s probe on port %s, not the metrics port", what, pp.String())
	}
}

// checkConfig reads the ConfigMap's outflow.yaml with the sensor's own
// loader: it must be valid, listen for metrics on the port the DaemonSet
// exposes from every address (Prometheus scrapes the node's), and write
// only to writable mounts.
func checkConfig(t *testing.T, cm *corev1.ConfigMap, port int32, writable []string) {
	t.Helper()
	src, ok := cm.Data[path.Base(configPath)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s", cm.Name, path.Base(configPath))
	}
	rc, err := sensor.ParseRunConfig(cm.Name+"/"+path.Base(configPath), []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(rc.Sources.Capture.Interfaces) == 0 {
		t.Error("the config captures from no interface")
	}
	addr, named, err := sensor.MetricsAddr(rc.Metrics.Listen)
	if err != nil {
		t.Fatalf("Metrics.Listen: %v", err)
	}
	host, p, _ := net.SplitHostPort(addr)
	if ip := net.ParseIP(host); !named || ip == nil || ip.IsLoopback() {
		t.Errorf("Metrics.Listen %q: Prometheus cannot reach it from another host", rc.Metrics.Listen)
	}
	if p != strconv.Itoa(int(port)) {
		t.Errorf("Metrics.Listen %q, but the DaemonSet exposes port %d", rc.Metrics.Listen, port)
	}
	written := []string{rc.Detect.State.Path, rc.Outputs.Spool, rc.Outputs.HostEventsOut}
	for _, s := range append(rc.Outputs.Flows, rc.Outputs.Alerts...) {
		written = append(written, s.Path)
	}
	for _, w := range written {
		if w == "" || w == "-" {
			continue
		}
		if !slices.ContainsFunc(writable, func(m string) bool { return strings.HasPrefix(path.Clean(w), m+"/") }) {
			t.Errorf("the config writes %s, outside the writable mounts %v (the root file system is read-only)", w, writable)
		}
	}
	if rc.Detect.State.Path == "" {
		t.Error("no State.Path: what the analytics learn would be lost at every restart")
	}
}

func cmpOr[T any](a, b *T) *T {
	if a != nil {
		return a
	}
	return b
}
