package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"
	"text/tabwriter"

	"github.com/cometgate/cometgate/config"
	"github.com/cometgate/cometgate/gateway"
)

// command handles the command line args (without the program name): the
// commands that need no running gateway (-h, -version, genconfig,
// checkconfig and -check-config) write to stdout and stderr and return
// done with the process's exit code; otherwise command returns the
// configuration file to run with ("" for the embedded defaults).
func command(args []string, stdout, stderr io.Writer) (configPath string, code int, done bool) {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, to stdout when asked for
	fs.StringVar(&configPath, "config", "", "run with this YAML configuration `file` (default: embedded defaults)")
	checkPath := fs.String("check-config", "", "validate this configuration `file` and exit (as checkconfig)")
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(stdout, fs)
			return "", 0, true
		}
		usage(stderr, fs) // the flag package has printed the error
		return "", 2, true
	}
	rest := fs.Args()
	switch {
	case *version:
		return "", versionCommand(rest, stdout, stderr), true
	case *checkPath != "":
		if len(rest) > 0 {
			fmt.Fprintf(stderr, "gateway: -check-config takes no arguments after the file, got %q\n", rest)
			return "", 2, true
		}
		return "", checkConfig(*checkPath, stdout, stderr), true
	case len(rest) == 0:
		return configPath, 0, false
	}
	switch cmd, args := rest[0], rest[1:]; cmd {
	case "genconfig":
		if len(args) > 0 {
			fmt.Fprintln(stderr, "usage: gateway genconfig > gateway.yaml")
			return "", 2, true
		}
		io.WriteString(stdout, config.Reference())
		return "", 0, true
	case "checkconfig":
		if len(args) != 1 {
			fmt.Fprintln(stderr, "usage: gateway checkconfig FILE")
			return "", 2, true
		}
		return "", checkConfig(args[0], stdout, stderr), true
	case "version":
		return "", versionCommand(args, stdout, stderr), true
	case "help":
		usage(stdout, fs)
		return "", 0, true
	default:
		fmt.Fprintf(stderr, "gateway: unknown command %q\n\n", cmd)
		usage(stderr, fs)
		return "", 2, true
	}
}

// usage writes the help text: commands, flags and the environment
// variables that override the configuration file.
func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `Cometgate: a Bayeux (CometD) gateway.

Usage:
  gateway [-config FILE]       run (default: the embedded defaults, demo chat at http://127.0.0.1:8080/)
  gateway genconfig            print the annotated reference configuration (every setting, its default)
  gateway checkconfig FILE     validate FILE and exit (same as -check-config FILE)
  gateway -version             print the module version and VCS revision and exit

Flags:
`)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fmt.Fprint(w, "\nEnvironment (overrides the configuration file; empty values are ignored):\n")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, e := range config.Environment() {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", e.Name, e.Field, e.Usage)
	}
	tw.Flush()
	fmt.Fprint(w, "\nSIGINT and SIGTERM shut the gateway down gracefully.\n")
}

// checkConfig loads and validates the file at path, and builds (without
// starting) everything it describes; it returns the exit code.
func checkConfig(path string, stdout, stderr io.Writer) int {
	cfg, err := config.Load(path)
	if err == nil {
		err = gateway.Check(cfg, gateway.WithConfigFile(path))
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	fmt.Fprintln(stdout, "configuration OK")
	return 0
}

func versionCommand(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		fmt.Fprintf(stderr, "gateway: -version takes no arguments, got %q\n", args)
		return 2
	}
	bi, ok := debug.ReadBuildInfo()
	io.WriteString(stdout, versionText(bi, ok))
	return 0
}

// versionText describes the build from its build information: the main
// module's version, and the VCS revision, commit time and modified flag
// the go command stamps when it builds from a checkout.
func versionText(bi *debug.BuildInfo, ok bool) string {
	if !ok || bi == nil {
		return fmt.Sprintf("cometgate (no build information)\ngo        %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	version := bi.Main.Version
	if version == "" {
		version = "(unknown)"
	}
	vcs := map[string]string{}
	for _, s := range bi.Settings {
		vcs[s.Key] = s.Value
	}
	var b strings.Builder
	fmt.Fprintf(&b, "cometgate %s\n", version)
	if bi.Main.Path != "" {
		fmt.Fprintf(&b, "module    %s\n", bi.Main.Path)
	}
	if rev := vcs["vcs.revision"]; rev != "" {
		fmt.Fprintf(&b, "revision  %s\n", rev)
		fmt.Fprintf(&b, "time      %s\n", vcs["vcs.time"])
		fmt.Fprintf(&b, "modified  %s\n", vcs["vcs.modified"])
	} else {
		b.WriteString("revision  unknown (built without VCS information)\n")
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	fmt.Fprintf(&b, "go        %s %s/%s\n", goVersion, runtime.GOOS, runtime.GOARCH)
	return b.String()
}
