package config_test

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/cometgate/cometgate/config"
)

// uncommentExamples returns the reference configuration with its
// commented-out examples made live. An example block starts with a line
// "#key:" ('#' directly followed by YAML) and goes on with lines "#  ..."
// (indented YAML); prose comments ("# text") and lone "#" lines end it.
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

// TestReferenceIsDefault checks that the live part of the reference
// configuration sets every setting, each to its default: decoded without
// applying defaults, it is the default configuration.
func TestReferenceIsDefault(t *testing.T) {
	var c config.Config
	if err := config.Decode([]byte(config.Reference()), &c); err != nil {
		t.Fatalf("Decode(Reference()) = %v", err)
	}
	got, err := yaml.Marshal(&c)
	if err != nil {
		t.Fatal(err)
	}
	want, err := yaml.Marshal(config.Default())
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("Reference() decodes to\n%s\nwant Default():\n%s", got, want)
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Reference() as is: Validate() = %v", err)
	}
}

// TestReferenceExamplesAreValid checks that the commented-out examples
// (backends, routes, auth), once uncommented, load and validate.
func TestReferenceExamplesAreValid(t *testing.T) {
	live := uncommentExamples(config.Reference())
	c, err := config.Load(writeFile(t, live))
	if err != nil {
		t.Fatalf("Load(uncommented Reference()) = %v\n%s", err, live)
	}
	if len(c.Backends) < 3 || len(c.Routes) < 5 {
		t.Errorf("uncommented examples: %d backends, %d routes; want the examples live", len(c.Backends), len(c.Routes))
	}
	c.Auth.Backend = "rooms" // as auth.backend's comment suggests
	if err := c.Validate(); err != nil {
		t.Errorf("uncommented Reference() with auth.backend rooms: Validate() = %v", err)
	}
	if c.Backends["legacy"].URL == "" {
		t.Error("no HTTP backend example (backends.legacy.url)")
	}
}

// TestReferenceDocumentsEveryField checks that every field of
// config.Config, found by walking its YAML tags, appears in the reference
// configuration, live or in a commented-out example: a new setting without
// documentation fails here.
func TestReferenceDocumentsEveryField(t *testing.T) {
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(uncommentExamples(config.Reference())), &doc); err != nil {
		t.Fatal(err)
	}
	typ := reflect.TypeFor[config.Config]()
	documented := map[string]bool{}
	nodePaths(doc.Content[0], typ, "", documented)
	want := map[string]bool{}
	typePaths(typ, "", want)
	if len(want) < 100 {
		t.Fatalf("only %d fields found in config.Config; the walk is broken", len(want))
	}
	var missing []string
	for p := range want {
		if !documented[p] {
			missing = append(missing, p)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Errorf("config/gateway.yaml does not document %d settings: %s", len(missing), strings.Join(missing, ", "))
	}
}

// typePaths adds to paths every YAML path of type t under prefix: map keys
// are written "*" and list items "[]".
func typePaths(t reflect.Type, prefix string, paths map[string]bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeFor[config.Duration]() || t == reflect.TypeFor[yaml.Node]() {
			return // a leaf, or a module's options (checked by the plugins package)
		}
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if !f.IsExported() || name == "-" {
				continue
			}
			p := joinPath(prefix, name)
			paths[p] = true
			typePaths(f.Type, p, paths)
		}
	case reflect.Map:
		if elem := deref(t.Elem()); elem.Kind() == reflect.Struct {
			typePaths(elem, prefix+".*", paths)
		}
	case reflect.Slice:
		if elem := deref(t.Elem()); elem.Kind() == reflect.Struct {
			typePaths(elem, prefix+"[]", paths)
		}
	}
}

// nodePaths adds to paths the YAML path of every key of n, decoded into t,
// written as typePaths writes them.
func nodePaths(n *yaml.Node, t reflect.Type, prefix string, paths map[string]bool) {
	t = deref(t)
	switch {
	case t.Kind() == reflect.Struct && n.Kind == yaml.MappingNode:
		fields := map[string]reflect.Type{}
		for i := range t.NumField() {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
			fields[name] = t.Field(i).Type
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := joinPath(prefix, n.Content[i].Value)
			paths[p] = true
			if ft, ok := fields[n.Content[i].Value]; ok {
				nodePaths(n.Content[i+1], ft, p, paths)
			}
		}
	case t.Kind() == reflect.Map && n.Kind == yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 {
			nodePaths(n.Content[i], t.Elem(), prefix+".*", paths)
		}
	case t.Kind() == reflect.Slice && n.Kind == yaml.SequenceNode:
		for _, item := range n.Content {
			nodePaths(item, t.Elem(), prefix+"[]", paths)
		}
	}
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

func joinPath(prefix, name string) string {
	if prefix == "" {
		return name
	}
	return prefix + "." + name
}

// TestEnvironmentDocumented checks that every environment variable the
// configuration reads is named in the reference configuration, next to
// its setting, and in the README.
func TestEnvironmentDocumented(t *testing.T) {
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	ref := config.Reference()
	for _, e := range config.Environment() {
		leaf := e.Field[strings.LastIndex(e.Field, ".")+1:]
		line := regexp.MustCompile(`(?m)^\s*` + regexp.QuoteMeta(leaf) + `:.*\benv ` + e.Name + `\b`)
		if !line.MatchString(ref) {
			t.Errorf("config/gateway.yaml: no line %q naming env %s", leaf+": ...", e.Name)
		}
		if !strings.Contains(string(readme), "`"+e.Name+"`") {
			t.Errorf("README.md does not name `%s`", e.Name)
		}
	}
	if n := len(config.Environment()); n < 9 {
		t.Errorf("Environment() lists %d variables; want at least the 9 of config/load.go", n)
	}
}
