package regex

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/filters/internal/jsonstr"
)

// Modules returns the package's modules for a plugins.Registry.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindFilter,
		Name: "regex",
		New:  func() any { return new(Filter) },
		Doc:  "reject or rewrite data whose string values match a pattern or a word list",
	}}
}

// Filter is the regex module. Its exported fields are its options; after
// Provision it is safe for concurrent use.
type Filter struct {
	// Rules apply in order to each string value. At least one.
	Rules []Rule `yaml:"rules"`
	// Fields, if not empty, limits the filter to these top-level fields of
	// a data object. Default: every string value of data.
	Fields []string `yaml:"fields"`

	rules  []rule   // compiled Rules
	fields []string // Fields, nil for all
}

// Rule is one rule of a regex filter.
type Rule struct {
	// Pattern is a regular expression in Go's RE2 syntax. A rule has a
	// Pattern or Words, not both.
	Pattern string `yaml:"pattern"`
	// Words are matched case-insensitively, as whole words.
	Words []string `yaml:"words"`
	// Action is "reject" or "replace". Default "reject".
	Action string `yaml:"action"`
	// Replacement replaces each match (action replace only). Default
	// "***". In a pattern rule, $1 and ${name} expand to groups.
	Replacement *string `yaml:"replacement"`
	// Reason is sent with a rejection (action reject only). Default
	// "forbidden_content".
	Reason string `yaml:"reason"`
}

// rule is a compiled Rule.
type rule struct {
	re     *regexp.Regexp // a pattern rule's
	words  *wordList      // a words rule's
	reject error          // the rejection to return; nil for a replace rule
	repl   []byte         // the replacement
}

// Actions.
const (
	actionReject  = "reject"
	actionReplace = "replace"
)

const (
	defaultReplacement = "***"
	defaultReason      = "forbidden_content"
)

// Interface guards.
var (
	_ plugins.Filter      = (*Filter)(nil)
	_ plugins.Provisioner = (*Filter)(nil)
	_ plugins.Validator   = (*Filter)(nil)
)

// Provision applies the defaults and compiles the rules.
func (f *Filter) Provision(*plugins.Context) error {
	if len(f.Fields) > 0 {
		f.fields = f.Fields
	}
	f.rules = make([]rule, 0, len(f.Rules))
	for i := range f.Rules {
		r := &f.Rules[i]
		if r.Action == "" {
			r.Action = actionReject
		}
		if r.Action == actionReplace && r.Replacement == nil {
			repl := defaultReplacement
			r.Replacement = &repl
		}
		if r.Action == actionReject && r.Reason == "" {
			r.Reason = defaultReason
		}
		if (r.Pattern == "") == (len(r.Words) == 0) {
			continue // Validate says why
		}
		var c rule
		if len(r.Words) > 0 {
			c.words = newWordList(r.Words)
		} else {
			re, err := regexp.Compile(r.Pattern)
			if err != nil {
				return fmt.Errorf("rules[%d].pattern: %w", i, err)
			}
			c.re = re
		}
		if r.Action == actionReject {
			c.reject = plugins.Reject(r.Reason)
		} else if r.Replacement != nil {
			c.repl = []byte(*r.Replacement)
		}
		f.rules = append(f.rules, c)
	}
	return nil
}

// Validate checks the options.
func (f *Filter) Validate() error {
	if len(f.Rules) == 0 {
		return errors.New("rules: at least one rule is required")
	}
	for i, r := range f.Rules {
		switch {
		case r.Pattern == "" && len(r.Words) == 0:
			return fmt.Errorf("rules[%d]: a pattern or words is required", i)
		case r.Pattern != "" && len(r.Words) > 0:
			return fmt.Errorf("rules[%d]: pattern and words: only one is allowed", i)
		case r.Action != actionReject && r.Action != actionReplace:
			return fmt.Errorf("rules[%d].action: %q: must be %q or %q", i, r.Action, actionReject, actionReplace)
		case r.Action == actionReject && r.Replacement != nil:
			return fmt.Errorf("rules[%d].replacement: only for action %q", i, actionReplace)
		case r.Action == actionReplace && r.Reason != "":
			return fmt.Errorf("rules[%d].reason: only for action %q", i, actionReject)
		case r.Action == actionReject && plugins.SafeReason(r.Reason) == "":
			return fmt.Errorf("rules[%d].reason: %q: must have printable characters", i, r.Reason)
		}
		for j, w := range r.Words {
			if w = strings.TrimSpace(w); w == "" {
				return fmt.Errorf("rules[%d].words[%d]: must not be empty", i, j)
			}
			if r, _ := utf8.DecodeRuneInString(w); !isWord(r) {
				return fmt.Errorf("rules[%d].words[%d]: %q: must start with a letter, digit or underscore (use a pattern)", i, j, w)
			}
		}
	}
	for i, name := range f.Fields {
		if name == "" {
			return fmt.Errorf("fields[%d]: must not be empty", i)
		}
	}
	return nil
}

// textPool holds buffers for decoding strings that have escapes.
var textPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// Filter applies the rules to m.Data's string values: it returns the
// first reject rule's rejection that matches, or rewrites the values that
// replace rules match. It returns another error only for data that is not
// JSON.
func (f *Filter) Filter(_ context.Context, m *plugins.Message) error {
	data := m.Data
	var out []byte // the rewritten data, made at the first rewrite
	last := 0      // data[:last] is in out
	var buf *[]byte
	defer func() {
		if buf != nil && cap(*buf) <= 64<<10 { // do not keep huge buffers
			textPool.Put(buf)
		}
	}()
	it := jsonstr.NewIter(data, f.fields)
	for it.Next() {
		text := it.Raw()
		if bytes.IndexByte(text, '\\') >= 0 {
			if buf == nil {
				buf = textPool.Get().(*[]byte)
			}
			*buf = jsonstr.AppendUnquote((*buf)[:0], text)
			text = *buf
		}
		text, changed, err := f.apply(text)
		if err != nil {
			return err
		}
		if !changed {
			continue
		}
		if out == nil {
			out = make([]byte, 0, len(data)+len(data)/4+16)
		}
		out = append(out, data[last:it.Start()]...)
		out = jsonstr.AppendQuote(out, text)
		last = it.End()
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("regex: %w", err)
	}
	if out != nil {
		m.Data = append(out, data[last:]...)
	}
	return nil
}

// apply runs the rules on text, a decoded string value (never written
// to). It returns the text the replace rules made and whether they
// changed it, or a reject rule's rejection.
func (f *Filter) apply(text []byte) ([]byte, bool, error) {
	changed := false
	for i := range f.rules {
		r := &f.rules[i]
		switch {
		case r.words != nil && r.reject != nil:
			if _, _, ok := r.words.next(text, 0); ok {
				return nil, false, r.reject
			}
		case r.words != nil:
			if t, ok := replaceWords(r.words, text, r.repl); ok {
				text, changed = t, true
			}
		case !r.re.Match(text):
		case r.reject != nil:
			return nil, false, r.reject
		default:
			text, changed = r.re.ReplaceAll(text, r.repl), true
		}
	}
	return text, changed, nil
}

// replaceWords returns text with each match of l replaced by repl, and
// whether there was one.
func replaceWords(l *wordList, text, repl []byte) ([]byte, bool) {
	var out []byte
	last := 0
	for {
		start, end, ok := l.next(text, last)
		if !ok {
			break
		}
		out = append(out, text[last:start]...)
		out = append(out, repl...)
		last = end
	}
	if last == 0 { // a match ends past 0
		return text, false
	}
	return append(out, text[last:]...), true
}
