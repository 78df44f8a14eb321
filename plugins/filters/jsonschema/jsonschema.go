package jsonschema

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/cometgate/cometgate/plugins"
	jsv "github.com/santhosh-tekuri/jsonschema/v6"
)

// Modules returns the package's modules for a plugins.Registry.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindFilter,
		Name: "jsonschema",
		New:  func() any { return new(Filter) },
		Doc:  "refuse messages whose data does not validate against a JSON Schema (400)",
	}}
}

// Filter is the jsonschema module. Its exported fields are its options;
// after Provision it is safe for concurrent use.
type Filter struct {
	// File is the JSON Schema's file name. Required.
	File string `yaml:"file"`
	// AssertFormat makes the format keyword an assertion (email, date-time,
	// ipv4...). Default false: format is an annotation.
	AssertFormat bool `yaml:"assertFormat"`

	schema *jsv.Schema
}

// Interface guards.
var (
	_ plugins.Filter      = (*Filter)(nil)
	_ plugins.Provisioner = (*Filter)(nil)
	_ plugins.Validator   = (*Filter)(nil)
)

// Provision compiles the schema.
func (f *Filter) Provision(ctx *plugins.Context) error {
	if f.File == "" {
		return nil // Validate says why
	}
	c := jsv.NewCompiler()
	c.UseLoader(jsv.FileLoader{}) // local files only, as is the default
	if f.AssertFormat {
		c.AssertFormat()
	}
	s, err := c.Compile(ctx.Path(f.File))
	if err != nil {
		return fmt.Errorf("file: %q: %w", f.File, err)
	}
	f.schema = s
	return nil
}

// Validate checks the options.
func (f *Filter) Validate() error {
	if f.File == "" {
		return errors.New("file: a JSON Schema file is required")
	}
	return nil
}

// pointerEscaper escapes a JSON Pointer token (RFC 6901).
var pointerEscaper = strings.NewReplacer("~", "~0", "/", "~1")

// maxPlace bounds the place named in a rejection, in bytes.
const maxPlace = 120

// Filter validates m.Data. It returns nil when it is valid, a 400
// rejection naming the first failing place when not, and another error
// when data cannot be decoded.
func (f *Filter) Filter(_ context.Context, m *plugins.Message) error {
	v, err := jsv.UnmarshalJSON(bytes.NewReader(m.Data))
	if err != nil {
		return fmt.Errorf("jsonschema: decoding data: %w", err)
	}
	err = f.schema.Validate(v)
	if err == nil {
		return nil
	}
	var ve *jsv.ValidationError
	if !errors.As(err, &ve) {
		return fmt.Errorf("jsonschema: %w", err)
	}
	return plugins.RejectCode(400, reason(ve))
}

// reason names the first leaf of a validation error tree: the place in
// data, as a JSON Pointer under "data", and the keyword that failed.
func reason(ve *jsv.ValidationError) string {
	for len(ve.Causes) > 0 {
		ve = ve.Causes[0]
	}
	var b strings.Builder
	b.WriteString("data")
	for _, tok := range ve.InstanceLocation {
		if b.Len() > maxPlace {
			b.WriteString("/...")
			break
		}
		b.WriteByte('/')
		tok = pointerEscaper.Replace(tok)
		if len(tok) > maxPlace {
			cut := maxPlace
			for cut > 0 && !utf8.RuneStart(tok[cut]) {
				cut--
			}
			tok = tok[:cut] + "..."
		}
		b.WriteString(tok)
	}
	if kw := ve.ErrorKind.KeywordPath(); len(kw) > 0 {
		b.WriteString(" fails ")
		b.WriteString(kw[len(kw)-1])
	} else {
		b.WriteString(" is invalid")
	}
	return b.String()
}
