package cometdjs_test

import (
	"encoding/json"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"path"
	"regexp"
	"strings"
	"testing"

	"github.com/cometgate/cometgate/gateway/internal/cometdjs"
)

// TestVersionMatchesPackage checks that Version names the vendored package.
func TestVersionMatchesPackage(t *testing.T) {
	b, err := fs.ReadFile(cometdjs.FS(), "package.json")
	if err != nil {
		t.Fatal(err)
	}
	var pkg struct{ Name, Version, License string }
	if err := json.Unmarshal(b, &pkg); err != nil {
		t.Fatal(err)
	}
	if pkg.Name != "cometd" || pkg.Version != cometdjs.Version || pkg.License != "Apache-2.0" {
		t.Errorf("package.json = %+v; want cometd %s Apache-2.0", pkg, cometdjs.Version)
	}
	if _, err := fs.Stat(cometdjs.FS(), "LICENSE"); err != nil {
		t.Errorf("LICENSE: %v", err)
	}
}

var importRE = regexp.MustCompile(`(?m)^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"`)

// TestImportsResolve walks the module graph from cometd.js and checks that
// every relative import names a vendored file, so the browser can load it.
func TestImportsResolve(t *testing.T) {
	fsys := cometdjs.FS()
	seen := map[string]bool{}
	todo := []string{"cometd.js"}
	for len(todo) > 0 {
		name := todo[0]
		todo = todo[1:]
		if seen[name] {
			continue
		}
		seen[name] = true
		b, err := fs.ReadFile(fsys, name)
		if err != nil {
			t.Errorf("import %q: %v", name, err)
			continue
		}
		for _, m := range importRE.FindAllStringSubmatch(string(b), -1) {
			spec := m[1]
			if !strings.HasPrefix(spec, "./") {
				t.Errorf("%s imports %q, which a browser cannot resolve without an import map", name, spec)
				continue
			}
			todo = append(todo, path.Clean(spec))
		}
	}
	for _, want := range []string{"Client.js", "AckExtension.js", "ReloadExtension.js", "WebSocketTransport.js", "LongPollingTransport.js"} {
		if !seen[want] {
			t.Errorf("module graph from cometd.js = %v; missing %s", seen, want)
		}
	}
}

// TestHandlerServesModules checks that the modules are served with a
// JavaScript MIME type, which browsers require for module scripts.
func TestHandlerServesModules(t *testing.T) {
	srv := httptest.NewServer(http.StripPrefix("/js/cometd", cometdjs.Handler()))
	defer srv.Close()
	for _, tc := range []struct {
		path, wantType, wantBody string
	}{
		{"/js/cometd/cometd.js", "text/javascript", `export * from "./Client.js"`},
		{"/js/cometd/Client.js", "text/javascript", "export class CometD"},
		{"/js/cometd/LICENSE", "", "Apache License"},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET %s: status %d; want 200", tc.path, resp.StatusCode)
			continue
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, tc.wantType) {
			t.Errorf("GET %s: Content-Type %q; want %q", tc.path, ct, tc.wantType)
		}
		if !strings.Contains(string(body), tc.wantBody) {
			t.Errorf("GET %s: body lacks %q", tc.path, tc.wantBody)
		}
	}
}
