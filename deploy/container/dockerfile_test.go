package container

import (
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/outflow-sensor/outflow/sensor"
)

// repoRoot is the build context the Dockerfile is written for.
var repoRoot = filepath.Join("..", "..")

const (
	binary  = "/outflow"
	config  = "/etc/outflow/outflow.yaml"
	dataDir = "/var/lib/outflow"
)

// TestDockerfile reads the Dockerfile with BuildKit's parser and its
// instruction decoder, the code `docker build` runs first, and checks the
// image it describes: a builder from golang:1.26-bookworm that makes the
// binary with scripts/build-static.sh and gives it CAP_NET_RAW as a file
// capability; a final stage FROM scratch holding that very binary, run as a
// numeric non-root user with the run config, whose every output lies in
// the volume the user owns; nothing fetched from a URL.
func TestDockerfile(t *testing.T) {
	stages := parseDockerfile(t, "Dockerfile")
	if len(stages) < 2 {
		t.Fatalf("%d stages, want a builder and a final stage", len(stages))
	}
	for _, st := range stages {
		for _, c := range st.Commands {
			if add, ok := c.(*instructions.AddCommand); ok {
				for _, src := range add.SourcePaths {
					if strings.Contains(src, "://") || strings.HasPrefix(src, "git@") {
						t.Errorf("line %d: ADD %s fetches from the network at build time", line(add.Location()), src)
					}
				}
			}
		}
	}

	builder := stages[0]
	if builder.BaseName != "golang:1.26-bookworm" {
		t.Errorf("the builder is FROM %s, want golang:1.26-bookworm", builder.BaseName)
	}
	built := builtBinary(t, builder)

	final := stages[len(stages)-1]
	if final.BaseName != "scratch" {
		t.Fatalf("the final stage is FROM %s, want scratch", final.BaseName)
	}
	uid, gid := finalUser(t, final)

	var copiedBinary, copiedConfig bool
	volumes := map[string]bool{}
	for _, c := range final.Commands {
		switch c := c.(type) {
		case *instructions.CopyCommand:
			if c.From != "" && !fromStage(c.From, stages, builder) {
				t.Errorf("line %d: COPY --from=%s: only the builder stage may be copied from", line(c.Location()), c.From)
			}
			if c.From == "" {
				for _, src := range c.SourcePaths {
					if _, err := os.Stat(filepath.Join(repoRoot, filepath.FromSlash(src))); err != nil {
						t.Errorf("line %d: COPY %s: not in the build context (the repository's root)", line(c.Location()), src)
					}
				}
			}
			if c.DestPath == binary {
				copiedBinary = true
				if c.From == "" || !slices.Equal(c.SourcePaths, []string{built}) {
					t.Errorf("line %d: %s comes from %v (--from=%q), want %s from the builder, the static build", line(c.Location()), binary, c.SourcePaths, c.From, built)
				}
				// chown clears a file's capabilities.
				if c.Chown != "" {
					t.Errorf("line %d: COPY --chown of %s drops its file capability", line(c.Location()), binary)
				}
			}
			if c.DestPath == config {
				copiedConfig = true
				if c.From != "" || len(c.SourcePaths) != 1 {
					t.Errorf("line %d: %s should be one file of the repository", line(c.Location()), config)
				} else {
					checkConfig(t, c.SourcePaths[0])
				}
			}
			if c.DestPath == dataDir && c.Chown != uid+":"+gid {
				t.Errorf("line %d: %s is owned by %q, want the image's user %s:%s", line(c.Location()), dataDir, c.Chown, uid, gid)
			}
		case *instructions.VolumeCommand:
			for _, v := range c.Volumes {
				volumes[path.Clean(v)] = true
			}
		case *instructions.EntrypointCommand:
			want := []string{binary, "run", "--config", config}
			if c.PrependShell || !slices.Equal(c.CmdLine, want) {
				t.Errorf("line %d: ENTRYPOINT %q (shell form %v), want the exec form %q", line(c.Location()), c.CmdLine, c.PrependShell, want)
			}
		}
	}
	if !copiedBinary {
		t.Errorf("the final stage copies no %s", binary)
	}
	if !copiedConfig {
		t.Errorf("the final stage copies no %s", config)
	}
	if !volumes[dataDir] {
		t.Errorf("no VOLUME %s in the final stage (volumes: %v)", dataDir, volumes)
	}
}

// parseDockerfile is the stages of a Dockerfile, failing on any warning of
// the parser or of the checks BuildKit runs while decoding instructions.
func parseDockerfile(t *testing.T, name string) []instructions.Stage {
	t.Helper()
	f, err := os.Open(name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := parser.Parse(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, w := range res.Warnings {
		t.Errorf("%s: parser warning: %s", name, w.Short)
	}
	lint := linter.New(&linter.Config{Warn: func(rule, _, _, msg string, loc []parser.Range) {
		t.Errorf("%s:%d: %s: %s", name, line(loc), rule, msg)
	}})
	stages, _, err := instructions.Parse(res.AST, lint)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return stages
}

// builtBinary is the path the builder stage writes the static binary to:
// the argument of its scripts/build-static.sh, which must also be given
// CAP_NET_RAW, and only that, by setcap.
func builtBinary(t *testing.T, builder instructions.Stage) string {
	t.Helper()
	var out string
	var caps []string
	for _, c := range builder.Commands {
		run, ok := c.(*instructions.RunCommand)
		if !ok {
			continue
		}
		for _, argv := range simpleCommands(t, run) {
			if i := slices.IndexFunc(argv, func(w string) bool { return path.Base(w) == "build-static.sh" }); i >= 0 && i+1 < len(argv) {
				out = argv[i+1]
			}
			if len(argv) == 3 && argv[0] == "setcap" {
				caps = append(caps, argv[2]+" "+argv[1])
			}
		}
	}
	if out == "" || !path.IsAbs(out) {
		t.Fatalf("the builder runs no scripts/build-static.sh OUTPUT with an absolute OUTPUT (found %q)", out)
	}
	if want := []string{out + " cap_net_raw=ep"}; !slices.Equal(caps, want) {
		t.Errorf("setcap in the builder: %q, want %q", caps, want)
	}
	return out
}

// simpleCommands splits a shell-form RUN into its commands (joined by &&
// or ;), each as its words, with BuildKit's own shell lexer.
func simpleCommands(t *testing.T, run *instructions.RunCommand) [][]string {
	t.Helper()
	if !run.PrependShell {
		return [][]string{run.CmdLine}
	}
	words, err := shell.NewLex('\\').ProcessWords(strings.Join(run.CmdLine, " "), shell.EnvsFromSlice(nil))
	if err != nil {
		t.Fatalf("line %d: RUN: %v", line(run.Location()), err)
	}
	var cmds [][]string
	var cur []string
	for _, w := range words {
		if w == "&&" || w == ";" || w == "||" {
			cmds, cur = append(cmds, cur), nil
			continue
		}
		cur = append(cur, w)
	}
	return append(cmds, cur)
}

// finalUser is the final stage's USER as numeric uid and gid, neither 0:
// a name would need an /etc/passwd the scratch image does not have, and
// Kubernetes' runAsNonRoot can only check a number.
func finalUser(t *testing.T, final instructions.Stage) (uid, gid string) {
	t.Helper()
	var user string
	for _, c := range final.Commands {
		if u, ok := c.(*instructions.UserCommand); ok {
			user = u.User
		}
	}
	uid, gid, _ = strings.Cut(user, ":")
	for _, id := range []struct{ what, v string }{{"uid", uid}, {"gid", gid}} {
		n, err := strconv.ParseUint(id.v, 10, 32)
		if err != nil || n == 0 {
			t.Fatalf("USER %q: the %s must be a number other than 0", user, id.what)
		}
	}
	return uid, gid
}

// checkConfig reads the image's run config with the sensor's own loader
// and checks that everything it writes lies in the data volume: the root
// file system may be read-only.
func checkConfig(t *testing.T, src string) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(src)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := sensor.ParseRunConfig(src, b)
	if err != nil {
		t.Fatalf("the image's config: %v", err)
	}
	written := []string{rc.Detect.State.Path, rc.Outputs.Spool, rc.Outputs.HostEventsOut}
	for _, s := range append(rc.Outputs.Flows, rc.Outputs.Alerts...) {
		written = append(written, s.Path)
	}
	for _, p := range written {
		if p != "" && p != "-" && !strings.HasPrefix(path.Clean(p), dataDir+"/") {
			t.Errorf("%s: writes %s, outside the volume %s", src, p, dataDir)
		}
	}
	if rc.Detect.State.Path == "" {
		t.Errorf("%s: no State.Path: what the analytics learn would be lost at every restart", src)
	}
}

// fromStage tells whether a COPY --from names the builder, by name or index.
func fromStage(from string, stages []instructions.Stage, builder instructions.Stage) bool {
	if from == builder.Name {
		return true
	}
	i, err := strconv.Atoi(from)
	return err == nil && i >= 0 && i < len(stages) && stages[i].Name == builder.Name
}

// line is where an instruction starts.
func line(loc []parser.Range) int {
	if len(loc) == 0 {
		return 0
	}
	return loc[0].Start.Line
}
