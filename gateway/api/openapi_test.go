package api_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"regexp"
	"testing"
)

// TestOpenAPIInfoAndSecurity checks what gateway_openapi.yaml puts in the
// served OpenAPI document: a title, the API's version, and the bearer
// token scheme required by every operation. It also checks that the copy
// served is the generated one.
func TestOpenAPIInfoAndSecurity(t *testing.T) {
	ctx := testCtx(t)
	srv := startGateway(t, nil)
	rc := newREST("http://"+apiAddr(t, srv), nil, "")
	code, _, body, err := rc.do(ctx, http.MethodGet, "/v1/openapi.json", nil)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET /v1/openapi.json: %d %v", code, err)
	}
	var doc struct {
		Swagger string `json:"swagger"`
		Info    struct {
			Title   string `json:"title"`
			Version string `json:"version"`
		} `json:"info"`
		SecurityDefinitions map[string]struct {
			Type string `json:"type"`
			In   string `json:"in"`
			Name string `json:"name"`
		} `json:"securityDefinitions"`
		Security []map[string][]string                 `json:"security"`
		Paths    map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger %q, want 2.0", doc.Swagger)
	}
	if doc.Info.Title != "Cometgate control API" {
		t.Errorf("info.title %q", doc.Info.Title)
	}
	if !regexp.MustCompile(`^1\.\d+\.\d+$`).MatchString(doc.Info.Version) {
		t.Errorf("info.version %q, want the API's version 1.x.y", doc.Info.Version)
	}
	bearer, ok := doc.SecurityDefinitions["bearer"]
	if !ok || bearer.Type != "apiKey" || bearer.In != "header" || bearer.Name != "Authorization" {
		t.Errorf("securityDefinitions %+v, want bearer: an apiKey in the Authorization header", doc.SecurityDefinitions)
	}
	if len(doc.Security) != 1 || doc.Security[0]["bearer"] == nil {
		t.Errorf("security %v, want [{bearer: []}] applied globally", doc.Security)
	}
	for path, ops := range doc.Paths {
		for method, op := range ops {
			var o struct {
				Security *json.RawMessage `json:"security"`
			}
			if err := json.Unmarshal(op, &o); err == nil && o.Security != nil {
				t.Errorf("%s %s overrides the global security with %s", method, path, *o.Security)
			}
		}
	}

	generated, err := os.ReadFile("../../proto/gen/cometgate/gateway/v1/gateway.swagger.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(body, generated) {
		t.Error("the served openapi.json differs from proto/gen's gateway.swagger.json: run scripts/genproto.sh")
	}
}
