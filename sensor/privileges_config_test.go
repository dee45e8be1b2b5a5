package sensor

import (
	"fmt"
	"strings"
	"testing"
)

// TestPrivilegesUser: Privileges.User is a run key (not handed to detect),
// and a user that cannot work is refused with its key: root, or any user
// with on-host attribution, which reads every process's sockets.
func TestPrivilegesUser(t *testing.T) {
	const base = "Sources:\n  Capture:\n    Interfaces: [eth1]\n    OnHost: %v\nOutputs:\n  Flows: [{Path: flows.json}]\nPrivileges:\n  User: %s\n"
	rc, err := ParseRunConfig("run.yaml", fmt.Appendf(nil, base, false, "outflow"))
	if err != nil {
		t.Fatal(err)
	}
	if rc.Privileges.User != "outflow" {
		t.Errorf("User %q", rc.Privileges.User)
	}
	for _, c := range []struct {
		onHost bool
		user   string
		want   string
	}{
		{false, "root", `Privileges.User: "root": name the unprivileged user`},
		{true, "outflow", "Privileges.User: cannot go with Sources.Capture.OnHost"},
	} {
		_, err := ParseRunConfig("run.yaml", fmt.Appendf(nil, base, c.onHost, c.user))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %s: %v", c.onHost, c.user, err)
		}
	}
}
