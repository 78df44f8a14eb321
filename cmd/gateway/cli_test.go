package main

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/config"
)

// runCommand runs command with args in process and returns its outputs.
func runCommand(t *testing.T, args ...string) (stdout, stderr string, code int, done bool) {
	t.Helper()
	var out, errOut bytes.Buffer
	path, code, done := command(args, &out, &errOut)
	if !done && path == "" && len(args) > 0 {
		t.Fatalf("command(%q) wants to run with no configuration file", args)
	}
	return out.String(), errOut.String(), code, done
}

func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHelpListsEnvironment checks that -h prints, on standard output, the
// commands and every environment variable the configuration reads.
func TestHelpListsEnvironment(t *testing.T) {
	for _, arg := range []string{"-h", "-help", "help"} {
		out, errOut, code, done := runCommand(t, arg)
		if !done || code != 0 || errOut != "" {
			t.Fatalf("command(%q) = done %v, code %d, stderr %q; want done, 0, nothing", arg, done, code, errOut)
		}
		want := []string{"genconfig", "checkconfig FILE", "-check-config", "-config", "-version",
			"COMETGATE_LISTEN", "COMETGATE_LOG_LEVEL", "COMETGATE_LOG_FORMAT", "COMETGATE_TIMEOUT",
			"COMETGATE_ALLOWED_ORIGINS", "COMETGATE_DEMO", "COMETGATE_API_LISTEN", "COMETGATE_API_TOKENS",
			"COMETGATE_DEBUG_LISTEN"}
		for _, e := range config.Environment() {
			want = append(want, e.Name+" ", e.Field)
		}
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("command(%q) output lacks %q:\n%s", arg, w, out)
			}
		}
	}
}

// TestGenconfigIsAccepted checks that genconfig prints config/gateway.yaml
// and that checkconfig and -check-config accept it, its commented-out
// examples included.
func TestGenconfigIsAccepted(t *testing.T) {
	out, errOut, code, done := runCommand(t, "genconfig")
	if !done || code != 0 || errOut != "" {
		t.Fatalf("genconfig = done %v, code %d, stderr %q; want done, 0, nothing", done, code, errOut)
	}
	file, err := os.ReadFile("../../config/gateway.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out != string(file) {
		t.Errorf("genconfig output differs from config/gateway.yaml")
	}
	for _, body := range []string{out, uncommentExamples(out)} {
		p := writeConfig(t, body)
		for _, args := range [][]string{{"checkconfig", p}, {"-check-config", p}} {
			out, errOut, code, done := runCommand(t, args...)
			if !done || code != 0 || out != "configuration OK\n" {
				t.Errorf("%q = done %v, code %d, stdout %q, stderr %q; want done, 0, \"configuration OK\"", args, done, code, out, errOut)
			}
		}
	}
}

// uncommentExamples makes the commented-out examples of the reference
// configuration live, as config's test of the same name does.
func uncommentExamples(text string) string {
	lines := strings.Split(text, "\n")
	inBlock := false
	for i, l := range lines {
		switch {
		case len(l) > 1 && l[0] == '#' && l[1] != ' ':
			inBlock = true
		case inBlock && strings.HasPrefix(l, "#  "):
		default:
			inBlock = false
			continue
		}
		lines[i] = l[1:]
	}
	return strings.Join(lines, "\n")
}

// TestCheckconfigNamesFields checks the messages checkconfig prints for a
// misspelt key and a bad duration, and its exit code.
func TestCheckconfigNamesFields(t *testing.T) {
	p := writeConfig(t, "bayeux:\n  maxInteval: 5s\n  timeout: abc\n")
	for _, args := range [][]string{{"checkconfig", p}, {"-check-config", p}} {
		out, errOut, code, done := runCommand(t, args...)
		if !done || code != 1 || out != "" {
			t.Errorf("%q = done %v, code %d, stdout %q; want done, 1, nothing", args, done, code, out)
		}
		for _, want := range []string{
			"line 2: bayeux.maxInteval: unknown field; did you mean maxInterval?\n",
			`line 3: bayeux.timeout: "abc": not a duration`,
		} {
			if !strings.Contains(errOut, want) {
				t.Errorf("%q stderr = %q; want it to contain %q", args, errOut, want)
			}
		}
	}
}

// TestCommandUsageErrors checks that a wrong command line exits with code
// 2 and says what is wrong, and that a plain run returns its file.
func TestCommandUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string // in stderr
	}{
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"checkconfig"}, "usage: gateway checkconfig FILE"},
		{[]string{"checkconfig", "a", "b"}, "usage: gateway checkconfig FILE"},
		{[]string{"genconfig", "x"}, "usage: gateway genconfig"},
		{[]string{"-bogus"}, "flag provided but not defined: -bogus"},
		{[]string{"-check-config", "a", "b"}, "no arguments after the file"},
	}
	for _, tt := range tests {
		out, errOut, code, done := runCommand(t, tt.args...)
		if !done || code != 2 || out != "" || !strings.Contains(errOut, tt.want) {
			t.Errorf("command(%q) = done %v, code %d, stdout %q, stderr %q; want done, 2, stderr with %q", tt.args, done, code, out, errOut, tt.want)
		}
	}
	var out, errOut bytes.Buffer
	if path, _, done := command([]string{"-config", "gw.yaml"}, &out, &errOut); done || path != "gw.yaml" || out.Len()+errOut.Len() != 0 {
		t.Errorf("command(-config gw.yaml) = %q, done %v, output %q %q; want gw.yaml to run with", path, done, out.String(), errOut.String())
	}
	if path, _, done := command(nil, &out, &errOut); done || path != "" {
		t.Errorf("command() = %q, done %v; want to run with the defaults", path, done)
	}
}

// TestVersion checks -version's output, from this test binary's build
// information and from a stamped build's.
func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"-version"}, {"version"}} {
		out, errOut, code, done := runCommand(t, args...)
		if !done || code != 0 || errOut != "" || !strings.HasPrefix(out, "cometgate ") || !strings.Contains(out, runtime.Version()) {
			t.Errorf("command(%q) = done %v, code %d, stdout %q, stderr %q; want \"cometgate ...\" with %s", args, done, code, out, errOut, runtime.Version())
		}
	}
	bi := &debug.BuildInfo{
		GoVersion: "go1.99.1",
		Main:      debug.Module{Path: "github.com/cometgate/cometgate", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs", Value: "git"},
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-07T17:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	want := "cometgate v1.2.3\n" +
		"module    github.com/cometgate/cometgate\n" +
		"revision  0123456789abcdef0123456789abcdef01234567\n" +
		"time      2026-12-07T17:00:00Z\n" +
		"modified  true\n" +
		"go        go1.99.1 " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if got := versionText(bi, true); got != want {
		t.Errorf("versionText(stamped build) =\n%s\nwant\n%s", got, want)
	}
	bi.Settings = nil
	if got := versionText(bi, true); !strings.Contains(got, "revision  unknown (built without VCS information)\n") {
		t.Errorf("versionText(unstamped build) =\n%s\nwant the revision said unknown", got)
	}
}

// TestPluginsExampleIsAccepted checks the plugins walk-through,
// config/plugins.yaml: every module it names loads with the options
// written there (its schema file found next to it), and a misspelt option
// is refused naming it.
func TestPluginsExampleIsAccepted(t *testing.T) {
	t.Setenv("COMETGATE_JWT_SECRET", "0123456789abcdef0123456789abcdef")
	out, errOut, code, done := runCommand(t, "checkconfig", "../../config/plugins.yaml")
	if !done || code != 0 || out != "configuration OK\n" {
		t.Fatalf("checkconfig config/plugins.yaml = code %d, stdout %q, stderr %q", code, out, errOut)
	}
	file, err := os.ReadFile("../../config/plugins.yaml")
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(file), "maxBytes: 4096", "maxbytes: 4096", 1)
	dir := t.TempDir()
	schema, err := os.ReadFile("../../config/chat-message.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "chat-message.schema.json"), schema, 0o600); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "plugins.yaml")
	if err := os.WriteFile(p, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errOut, code, _ = runCommand(t, "checkconfig", p)
	if code == 0 || !strings.Contains(errOut, "maxbytes") {
		t.Errorf("checkconfig of a misspelt option = code %d, stderr %q; want refused, naming maxbytes", code, errOut)
	}
}
