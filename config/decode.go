package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// DecodeError reports a key or value of a YAML file that does not fit the
// configuration: an unknown key, or a value of the wrong type. It names the
// field by its dotted YAML path, never by a Go type.
type DecodeError struct {
	Line   int    // line of the key or value in the file, 1-based
	Field  string // dotted YAML path, e.g. "bayeux.timeout"
	Value  string // the offending value as written (quoted), or "" for an unknown key
	Reason string // what is wrong, e.g. "not a duration"
}

func (e *DecodeError) Error() string {
	if e.Value == "" {
		return fmt.Sprintf("line %d: %s: %s", e.Line, e.Field, e.Reason)
	}
	return fmt.Sprintf("line %d: %s: %s: %s", e.Line, e.Field, e.Value, e.Reason)
}

// Decode parses YAML into c, rejecting unknown keys. An empty document
// leaves c unchanged. A key or value that does not fit is reported as a
// *DecodeError naming its field path (all of them, joined, wrapping
// [ErrInvalid]); an unknown key comes with the closest known one.
func Decode(data []byte, c *Config) error {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("parse config: %w", err)
	}
	if len(doc.Content) == 0 {
		return nil
	}
	if errs := checkNode(doc.Content[0], reflect.TypeFor[Config](), ""); len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrInvalid, errors.Join(errs...))
	}
	// The check above has found every problem the decoder knows of; the
	// decoder stays strict in case it did not.
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(c); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("parse config: %w", err)
	}
	return nil
}

var (
	durationType = reflect.TypeFor[Duration]()
	nodeType     = reflect.TypeFor[yaml.Node]()
)

// checkNode checks n against the Go type t that it will be decoded into,
// path being n's dotted YAML path, and returns a *DecodeError for each
// unknown key and each value of the wrong type.
func checkNode(n *yaml.Node, t reflect.Type, path string) []error {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if n.Tag == "!!null" || t == nodeType {
		return nil
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType:
		if n.Kind != yaml.MappingNode {
			return []error{wrongKind(n, path, "a mapping of settings")}
		}
		fields := yamlFields(t)
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if k.Tag == "!!merge" { // "<<: *anchor" merges a mapping, or a list of them
				errs = append(errs, checkMerge(v, t, path)...)
				continue
			}
			f, ok := fields[k.Value]
			if !ok {
				errs = append(errs, &DecodeError{Line: k.Line, Field: join(path, k.Value), Reason: unknownField(k.Value, fields)})
				continue
			}
			errs = append(errs, checkNode(v, f.Type, join(path, k.Value))...)
		}
		return errs
	case t.Kind() == reflect.Map && t.Elem().Kind() != reflect.Interface:
		if n.Kind != yaml.MappingNode {
			return []error{wrongKind(n, path, "a mapping")}
		}
		var errs []error
		for i := 0; i+1 < len(n.Content); i += 2 {
			errs = append(errs, checkNode(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value))...)
		}
		return errs
	case t.Kind() == reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return []error{wrongKind(n, path, "a list")}
		}
		var errs []error
		for i, item := range n.Content {
			errs = append(errs, checkNode(item, t.Elem(), fmt.Sprintf("%s[%d]", path, i))...)
		}
		return errs
	}
	// A leaf: let the YAML library decode it alone, so that what it
	// accepts here is exactly what it accepts in the whole file.
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		return []error{wrongKind(n, path, leafKind(t))}
	}
	return nil
}

// checkMerge checks the value of a merge key ("<<") in a mapping decoded
// into t, at path.
func checkMerge(v *yaml.Node, t reflect.Type, path string) []error {
	for v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	if v.Kind != yaml.SequenceNode {
		return checkNode(v, t, path)
	}
	var errs []error
	for _, item := range v.Content {
		errs = append(errs, checkNode(item, t, path)...)
	}
	return errs
}

// wrongKind reports that n, at path, is not what was expected (want, e.g.
// "an integer").
func wrongKind(n *yaml.Node, path, want string) *DecodeError {
	e := &DecodeError{Line: n.Line, Field: path, Reason: "not " + want}
	switch n.Kind {
	case yaml.MappingNode:
		e.Value = "(a mapping)"
	case yaml.SequenceNode:
		e.Value = "(a list)"
	default:
		e.Value = strconv.Quote(n.Value)
	}
	if want == "a duration" {
		e.Reason += " (write e.g. 20s, 500ms, or an integer of milliseconds)"
	}
	return e
}

// leafKind names what a value of type t must be, for error messages.
func leafKind(t reflect.Type) string {
	switch {
	case t == durationType:
		return "a duration"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "an integer"
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return "a number"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Map:
		return "a mapping"
	}
	return "a valid value"
}

// yamlFields returns t's fields by their YAML key.
func yamlFields(t reflect.Type) map[string]reflect.StructField {
	fields := make(map[string]reflect.StructField, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fields[name] = f
	}
	return fields
}

// unknownField is the reason given for an unknown key: "unknown field",
// with the closest known key when one is close enough to be a typo.
func unknownField(key string, fields map[string]reflect.StructField) string {
	names := make([]string, 0, len(fields))
	for name := range fields {
		names = append(names, name)
	}
	sort.Strings(names) // ties go to the first name, whatever the map order
	best, bestDist := "", -1
	for _, name := range names {
		d := editDistance(strings.ToLower(key), strings.ToLower(name))
		if bestDist < 0 || d < bestDist {
			best, bestDist = name, d
		}
	}
	if best != "" && bestDist <= max(1, len(key)/3) {
		return "unknown field; did you mean " + best + "?"
	}
	return "unknown field; known fields: " + strings.Join(names, ", ")
}

// editDistance is the optimal-string-alignment distance between a and b,
// in bytes: insertions, deletions, substitutions and transpositions of two
// adjacent bytes each count one.
func editDistance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d := min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d = min(d, rows[i-2][j-2]+1)
			}
			rows[i][j] = d
		}
	}
	return rows[len(a)][len(b)]
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
