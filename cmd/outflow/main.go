// Command outflow is the Outflow sensor: replay captures in the lab, watch a
// SPAN port, collect router flows, or check a config.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"syscall"

	"github.com/alecthomas/kong"
)

// cli is the command line: global flags, then one command. Flags may come
// before or after file names, as in the tools users know.
type cli struct {
	Version   kong.VersionFlag `help:"Print the version and exit."`
	LogLevel  string           `placeholder:"LEVEL" help:"Least severe log level shown: debug, info, warn or error (default: Logging.Level of outflow run's config, else info)."`
	LogFormat string           `placeholder:"FORMAT" help:"Log line format: text or json (default: Logging.Format of outflow run's config, else text)."`

	Replay  replayCmd  `cmd:"" help:"Read pcap, pcapng or gzip captures and write flow records (and alerts with --alerts)."`
	Live    liveCmd    `cmd:"" help:"Capture from interfaces (AF_PACKET) until SIGINT or SIGTERM."`
	Collect collectCmd `cmd:"" help:"Receive NetFlow, IPFIX and sFlow exports until SIGINT or SIGTERM."`
	Run     runCmd     `cmd:"" help:"Run the sensor as a service from one config file: sources, outputs, detection, state and logging."`
	Check   checkCmd   `cmd:"" help:"Validate a config file, naming the line and key of every problem."`
}

// Validate checks the global flags.
func (c *cli) Validate() error {
	var errs []error
	if c.LogLevel != "" && !slices.Contains([]string{"debug", "info", "warn", "error"}, c.LogLevel) {
		errs = append(errs, fmt.Errorf("--log-level must be debug, info, warn or error, not %q", c.LogLevel))
	}
	if c.LogFormat != "" && c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, not %q", c.LogFormat))
	}
	return errors.Join(errs...)
}

// env is what a command runs with: where output goes, the logger, the
// context that SIGINT and SIGTERM cancel, and SIGHUP's deliveries.
type env struct {
	ctx            context.Context
	stdout, stderr io.Writer
	log            *slog.Logger
	// --log-level and --log-format as given ("" when not): they win over
	// a run config's Logging.
	logLevel, logFormat string
	hup                 <-chan os.Signal
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	// A reader that goes away (`outflow ... --flows - | head`) makes writes
	// to stdout fail, counted by that output, instead of killing the
	// process with every other output (the alerts file) unflushed.
	signal.Ignore(syscall.SIGPIPE)
	code := execute(ctx, os.Args[1:], os.Stdout, os.Stderr, hup)
	stop()
	os.Exit(code)
}

// kongExit carries an exit status out of kong (help, version) without
// ending the process, so execute can be tested.
type kongExit int

// execute runs one command line and returns its exit status: 0 done, 1 the
// work failed or some input could not be read, 2 the command line is wrong.
func execute(ctx context.Context, args []string, stdout, stderr io.Writer, hup <-chan os.Signal) (code int) {
	var c cli
	parser, err := kong.New(&c,
		kong.Name("outflow"),
		kong.Description("Outflow tells which process, on which host, is pushing data out to a web service or through a hidden encrypted channel."),
		kong.Writers(stdout, stderr),
		kong.Vars{"version": version()},
		kong.Exit(func(n int) { panic(kongExit(n)) }),
		kong.ConfigureHelp(kong.HelpOptions{Compact: true}),
	)
	if err != nil {
		fmt.Fprintf(stderr, "outflow: %v\n", err)
		return 1
	}
	defer func() {
		if r := recover(); r != nil {
			n, ok := r.(kongExit)
			if !ok {
				panic(r)
			}
			code = int(n)
		}
	}()
	if len(args) == 0 {
		args = []string{"--help"}
	}
	kctx, err := parser.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "outflow: %s\n", plainParseError(err))
		var pe *kong.ParseError
		if errors.As(err, &pe) && pe.Context != nil && pe.Context.Selected() != nil {
			fmt.Fprintf(stderr, "Run 'outflow %s --help' for its flags.\n", pe.Context.Selected().Name)
		} else {
			fmt.Fprintln(stderr, "Run 'outflow --help' for the commands.")
		}
		return 2
	}
	e := &env{ctx: ctx, stdout: stdout, stderr: stderr, log: newLogger(stderr, c.LogLevel, c.LogFormat), hup: hup,
		logLevel: c.LogLevel, logFormat: c.LogFormat}
	if hup == nil {
		e.hup = make(chan os.Signal)
	}
	err = kctx.Run(e)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "outflow: %v\n", err)
	var ue usageError
	if errors.As(err, &ue) {
		return 2
	}
	return 1
}

// plainParseError is kong's message without the wrapping of its own types.
func plainParseError(err error) string {
	msg := err.Error()
	var pe *kong.ParseError
	if errors.As(err, &pe) {
		msg = pe.Unwrap().Error()
	}
	// kong's `expected "<FILE> ..."`: an argument is missing.
	if arg, ok := strings.CutPrefix(msg, `expected "`); ok {
		return "missing " + strings.TrimSuffix(arg, `"`)
	}
	return msg
}

// newLogger makes the process's logger; levels and formats were checked
// by the parser.
func newLogger(w io.Writer, level, format string) *slog.Logger {
	var l slog.Level // info
	if level != "" {
		_ = l.UnmarshalText([]byte(level))
	}
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// version is the module version the binary was built from (a release tag,
// or the pseudo-version of the commit), with the commit and the toolchain.
func version() string {
	v, rev, dirty := "(unknown)", "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		v = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				if s.Value == "true" {
					dirty = ", modified"
				}
			}
		}
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if rev != "" {
		rev = "commit " + rev + dirty + ", "
	}
	return fmt.Sprintf("outflow %s (%s%s %s/%s)", v, rev, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}
