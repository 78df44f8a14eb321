//go:build unix

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain runs the gateway itself instead of the tests when the test
// binary is started again by startGateway.
func TestMain(m *testing.M) {
	if os.Getenv("COMETGATE_TEST_RUN_GATEWAY") == "1" {
		os.Exit(run())
	}
	os.Exit(m.Run())
}

// gatewayProcess is the gateway running in a child process, with its JSON
// log lines.
type gatewayProcess struct {
	cmd  *exec.Cmd
	logs chan map[string]any // closed when the process closes stderr
	seen []string            // messages read so far, for failure reports
}

// startGateway runs this test binary as the gateway, on loopback port 0
// with the control API off, and returns it once it listens, with its
// address. The process is killed when t ends, if still running.
func startGateway(t *testing.T, ctx context.Context) (*gatewayProcess, string) {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "gateway.yaml")
	yaml := "listen: 127.0.0.1:0\nlog:\n  format: json\napi:\n  listen: \"off\"\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, os.Args[0], "-config", cfg)
	cmd.Env = append(os.Environ(), "COMETGATE_TEST_RUN_GATEWAY=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &gatewayProcess{cmd: cmd, logs: make(chan map[string]any, 64)}
	go readLogs(stderr, p.logs)
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			for range p.logs {
			}
			cmd.Wait()
		}
	})
	l := p.waitLog(t, ctx, "cometgate listening")
	addr, _ := l["addr"].(string)
	if addr == "" {
		t.Fatalf("listening line without addr: %v", l)
	}
	return p, addr
}

func readLogs(r io.Reader, out chan<- map[string]any) {
	defer close(out)
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) != nil {
			m = map[string]any{"msg": sc.Text()}
		}
		out <- m
	}
}

// waitLog returns the next log line with message msg.
func (p *gatewayProcess) waitLog(t *testing.T, ctx context.Context, msg string) map[string]any {
	t.Helper()
	for {
		select {
		case l, ok := <-p.logs:
			if !ok {
				t.Fatalf("gateway closed its log before %q (%v); it logged %q", msg, p.cmd.Wait(), p.seen)
			}
			m, _ := l["msg"].(string)
			p.seen = append(p.seen, m)
			if m == msg {
				return l
			}
		case <-ctx.Done():
			t.Fatalf("no log line %q before the deadline; it logged %q", msg, p.seen)
		}
	}
}

func checkHealthy(t *testing.T, ctx context.Context, addr, when string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/healthz", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET /healthz %s: %v", when, err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || string(body) != "ok\n" {
		t.Fatalf("GET /healthz %s: %d %q, want 200 \"ok\\n\"", when, resp.StatusCode, body)
	}
}

// TestHangupReloads checks that SIGHUP reloads the -config file without
// stopping the gateway, that a broken file is refused and logged while
// the gateway keeps running, and that SIGTERM then shuts it down with exit
// code 0.
func TestHangupReloads(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	p, addr := startGateway(t, ctx)
	checkHealthy(t, ctx, addr, "after start")
	file := p.cmd.Args[2] // -config FILE

	for i := range 2 {
		if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
			t.Fatal(err)
		}
		l := p.waitLog(t, ctx, "configuration reloaded")
		if l["level"] != "INFO" || l["file"] != file {
			t.Errorf("reload line %v; want level INFO and file %s", l, file)
		}
		checkHealthy(t, ctx, addr, fmt.Sprintf("after SIGHUP %d", i+1))
	}
	broken := "listen: 127.0.0.1:0\nlog:\n  format: json\napi:\n  listen: \"off\"\nbayeux:\n  maxQueue: -1\n"
	if err := os.WriteFile(file, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	l := p.waitLog(t, ctx, "reload refused: invalid configuration; the running one is kept")
	if e, _ := l["err"].(string); l["level"] != "ERROR" || !strings.Contains(e, "bayeux.maxQueue") {
		t.Errorf("refusal line %v; want level ERROR naming bayeux.maxQueue", l)
	}
	checkHealthy(t, ctx, addr, "after a refused reload")

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLog(t, ctx, "cometgate shutting down")
	for range p.logs {
	}
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("gateway after SIGTERM: %v (exit code %d), want exit code 0", err, p.cmd.ProcessState.ExitCode())
	}
}
