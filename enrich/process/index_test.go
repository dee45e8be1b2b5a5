package process

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/outflow-sensor/outflow/enrich/feed"
	"github.com/outflow-sensor/outflow/internal/shared"
)

// TestQueryModuleLoads: the Windows Log4Shell fixture's crypto library load
// by powershell.exe (pid 2084) before its connection, as the T1573.001
// host variant will ask for it.
func TestQueryModuleLoads(t *testing.T) {
	x := New(DefaultConfig())
	if _, err := feed.ReadFile(shared.Path(t, filepath.Join("hostlogs", "otrf-log4shell-windows",
		"sysmon_log4shell_cve2021_44228_java_serialized_object_2022-05-13045800.json")), x.Add, nil); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2022, 5, 13, 8, 54, 9, 390e6, time.UTC)
	loads := x.Query("workstation5", at.Add(-time.Minute), at, "", 2084, feed.KindModuleLoad)
	found := false
	for _, e := range loads {
		if feed.ImageName(e.Target) == "bcryptprimitives.dll" && e.Time.Format("15:04:05.000") == "08:54:08.707" {
			found = true
		}
	}
	if !found {
		t.Errorf("no bcryptprimitives.dll load by pid 2084 at 08:54:08.707 among %d loads", len(loads))
	}
}
