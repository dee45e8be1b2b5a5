package detect

import (
	"strings"
	"testing"
)

// TestToolsListRows: every row of the shipped tools list has its four
// columns, a platform the analytics know, and a source; no name is listed
// twice, since a later row would silently replace an earlier one.
func TestToolsListRows(t *testing.T) {
	b, err := listFiles.ReadFile("lists/tools.tsv")
	if err != nil {
		t.Fatalf("lists/tools.tsv is not embedded: %v", err)
	}
	seen := map[string]int{}
	for i, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		n := i + 1
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			t.Errorf("tools.tsv line %d: %d columns, want name, platform, capabilities, source", n, len(f))
			continue
		}
		for c, v := range f {
			if strings.TrimSpace(v) == "" {
				t.Errorf("tools.tsv line %d: column %d is empty", n, c+1)
			}
		}
		if f[1] != "windows" && f[1] != "unix" {
			t.Errorf("tools.tsv line %d: platform %q, want windows or unix", n, f[1])
		}
		name := strings.ToLower(f[0])
		if prev, ok := seen[name]; ok {
			t.Errorf("tools.tsv line %d: %s is already on line %d", n, name, prev)
		}
		seen[name] = n
	}
}

// TestToolsListUnixNames: the Linux and macOS executables of the tunnel,
// sync and transfer tools are matched, through the lookups the analytics
// use (toolSends, and the rare-host rating), as the tools they are. The
// paths are where the packages install them: Debian bookworm's packages
// as `dpkg -c` lists them (stunnel4, iodine, lftp, putty-tools,
// httptunnel, rclone), MEGA's own macOS bundles, and ngrok's download.
func TestToolsListUnixNames(t *testing.T) {
	c := Compiled()
	l := c.lists
	alertCap := func(tl tool) string {
		for _, want := range c.WebFileSharing.ToolCapabilities {
			if tl.can(want) {
				return want
			}
		}
		return ""
	}
	for _, tc := range []struct {
		image string
		cap   string // the ToolCapabilities entry that makes it alert on its own; "" when none does
	}{
		{"/usr/bin/stunnel4", "tls-tunnel"}, // Debian's binary; /usr/bin/stunnel links to it
		{"/usr/bin/stunnel", "tls-tunnel"},
		{"/usr/bin/stunnel3", "tls-tunnel"}, // Debian's stunnel 3 compatibility wrapper
		{"/opt/homebrew/bin/stunnel", "tls-tunnel"},
		{"/usr/sbin/iodine", "tunnel"},
		{"/usr/sbin/iodined", "tunnel"},
		{"/usr/local/bin/dnscat", "tunnel"},
		{"/usr/bin/htc", "tunnel"},
		{"/usr/bin/hts", "tunnel"},
		{"/usr/bin/plink", "tunnel"},
		{"/usr/local/bin/ngrok", "tunnel"},
		{"/home/dev/bin/devtunnel", "tunnel"},
		{"/usr/bin/rclone", "cloud-sync/exfil"},
		{"/usr/bin/mega-cmd-server", "cloud-sync/exfil"},
		{"/Applications/MEGAcmd.app/Contents/MacOS/mega-cmd", "cloud-sync/exfil"},
		{"/usr/bin/megasync", "cloud-sync/exfil"},
		{"/Applications/MEGAsync.app/Contents/MacOS/MEGAclient", "cloud-sync/exfil"},
		{"/usr/bin/lftp", ""},
		{"/usr/bin/pscp", ""},
		{"/usr/bin/psftp", ""},
		{"/usr/bin/pwsh", ""},
	} {
		tl, ok := l.tool(tc.image)
		if !ok {
			t.Errorf("%s: not in the tools list", tc.image)
			continue
		}
		if tl.platform != "unix" || !isUnixLOLBin(l, tc.image) || isTool(l, tc.image, "windows") {
			t.Errorf("%s: platform %q, want unix (rated as a UNIX LOLBIN, not a Windows one)", tc.image, tl.platform)
		}
		if got := alertCap(tl); got != tc.cap {
			t.Errorf("%s: alerts on its own as %q, want %q (capabilities %v)", tc.image, got, tc.cap, tl.caps)
		}
	}
	// lftp moves files both ways: it is rated, and only that.
	if tl, _ := l.tool("/usr/bin/lftp"); !tl.can("upload") || !tl.can("download") {
		t.Errorf("lftp: capabilities %v, want upload and download", tl.caps)
	}
	// Everyday admin tools must not alert merely for sending a megabyte.
	for _, image := range []string{"/usr/bin/ssh", "/usr/bin/scp", "/usr/bin/rsync", "/usr/bin/socat", "/usr/bin/curl", "/usr/bin/sshuttle"} {
		if tl, ok := l.tool(image); ok && alertCap(tl) != "" {
			t.Errorf("%s: alerts on its own as %q; an admin tool should only be rated", image, alertCap(tl))
		}
	}
	// The Windows names keep their own platform.
	if !isTool(l, `C:\Program Files\stunnel\bin\stunnel.exe`, "windows") {
		t.Error("stunnel.exe is no longer a Windows tool")
	}
}
