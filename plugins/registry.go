package plugins

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Kind is what a module is for; a module name is unique within its kind.
type Kind string

// Kinds.
const (
	KindFilter        Kind = "filter"
	KindPolicy        Kind = "policy"
	KindAuthenticator Kind = "authenticator"
	KindListener      Kind = "listener"
)

// ModuleInfo registers a module.
type ModuleInfo struct {
	Kind Kind
	// Name is what configuration files call it by ("nomarkup", "jwt").
	Name string
	// New returns a fresh, zero-options value of the module: a pointer to
	// a struct whose yaml-tagged fields are its options. It must implement
	// the interface of Kind (Filter, Policy, Authenticator; a listener at
	// least one of the listener interfaces).
	New func() any
	// Doc is one line for listings.
	Doc string
}

// Registry is a set of modules by kind and name. Build one at start-up
// (plugins/standard registers the built-in ones) and hand it to the
// gateway; there is no global registry. Safe for concurrent use.
type Registry struct {
	mu      sync.RWMutex
	modules map[Kind]map[string]ModuleInfo
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{modules: make(map[Kind]map[string]ModuleInfo)}
}

// Register adds a module. It fails for an empty name, a nil New, an
// unknown kind, a value of the wrong kind, or a name already taken.
func (r *Registry) Register(m ModuleInfo) error {
	if m.Name == "" || m.New == nil {
		return errors.New("plugins: module needs a name and New")
	}
	v := m.New()
	if reflect.TypeOf(v) == nil || reflect.TypeOf(v).Kind() != reflect.Pointer {
		return fmt.Errorf("plugins: module %s %q: New must return a pointer", m.Kind, m.Name)
	}
	if err := checkKind(m.Kind, v); err != nil {
		return fmt.Errorf("plugins: module %s %q: %w", m.Kind, m.Name, err)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	byName := r.modules[m.Kind]
	if byName == nil {
		byName = make(map[string]ModuleInfo)
		r.modules[m.Kind] = byName
	}
	if _, dup := byName[m.Name]; dup {
		return fmt.Errorf("plugins: module %s %q registered twice", m.Kind, m.Name)
	}
	byName[m.Name] = m
	return nil
}

// MustRegister is Register that panics, for start-up code registering
// built-in modules.
func (r *Registry) MustRegister(m ModuleInfo) {
	if err := r.Register(m); err != nil {
		panic(err)
	}
}

func checkKind(k Kind, v any) error {
	ok := false
	switch k {
	case KindFilter:
		_, ok = v.(Filter)
	case KindPolicy:
		_, ok = v.(Policy)
	case KindAuthenticator:
		_, ok = v.(Authenticator)
	case KindListener:
		_, s := v.(SessionListener)
		_, u := v.(SubscriptionListener)
		_, q := v.(QueueListener)
		ok = s || u || q
	default:
		return fmt.Errorf("unknown kind")
	}
	if !ok {
		return fmt.Errorf("does not implement the %s interface", k)
	}
	return nil
}

// Lookup returns the module of kind named name.
func (r *Registry) Lookup(k Kind, name string) (ModuleInfo, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	m, ok := r.modules[k][name]
	return m, ok
}

// Names lists the modules of kind k, sorted.
func (r *Registry) Names(k Kind) []string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	names := make([]string, 0, len(r.modules[k]))
	for n := range r.modules[k] {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// ModuleKey is the key of a module entry in configuration that names the
// module; the entry's other keys are the module's options.
const ModuleKey = "module"

// Decode makes a module of kind k from a configuration entry: a mapping
// with a "module" key naming it and the module's options. Options are
// decoded strictly; the module is then provisioned and validated. On
// failure whatever was provisioned is cleaned up. The name returned is the
// module's.
func (r *Registry) Decode(ctx *Context, k Kind, entry *yaml.Node) (name string, module any, err error) {
	for entry.Kind == yaml.AliasNode && entry.Alias != nil {
		entry = entry.Alias
	}
	if entry.Kind != yaml.MappingNode {
		return "", nil, fmt.Errorf("line %d: a %s must be a mapping with a %q key", entry.Line, k, ModuleKey)
	}
	opts := &yaml.Node{Kind: yaml.MappingNode, Tag: "!!map", Line: entry.Line, Column: entry.Column}
	for i := 0; i+1 < len(entry.Content); i += 2 {
		key, val := entry.Content[i], entry.Content[i+1]
		if key.Value == ModuleKey {
			name = val.Value
			continue
		}
		opts.Content = append(opts.Content, key, val)
	}
	if name == "" {
		return "", nil, fmt.Errorf("line %d: a %s needs a %q key naming one of: %v", entry.Line, k, ModuleKey, r.Names(k))
	}
	info, ok := r.Lookup(k, name)
	if !ok {
		return name, nil, fmt.Errorf("line %d: unknown %s module %q; known: %v", entry.Line, k, name, r.Names(k))
	}
	module = info.New()
	if err := decodeStrict(opts, module); err != nil {
		return name, nil, fmt.Errorf("%s %q: %w", k, name, err)
	}
	if p, ok := module.(Provisioner); ok {
		if err := p.Provision(ctx); err != nil {
			cleanup(module)
			return name, nil, fmt.Errorf("line %d: %s %q: %w", entry.Line, k, name, err)
		}
	}
	if v, ok := module.(Validator); ok {
		if err := v.Validate(); err != nil {
			cleanup(module)
			return name, nil, fmt.Errorf("line %d: %s %q: %w", entry.Line, k, name, err)
		}
	}
	return name, module, nil
}

// decodeStrict decodes n into v, failing on keys v has no field for. The
// error names the line of the offending key.
func decodeStrict(n *yaml.Node, v any) error {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	if err := enc.Encode(n); err != nil {
		return fmt.Errorf("options: %w", err)
	}
	enc.Close()
	// Re-encoding renumbers lines; errors are mapped back by key name.
	dec := yaml.NewDecoder(&buf)
	dec.KnownFields(true)
	if err := dec.Decode(v); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("line %d: options: %w", n.Line, unwrapYAML(err))
	}
	return nil
}

// unwrapYAML drops the re-encoded document's line numbers from a yaml
// error, which would mislead.
func unwrapYAML(err error) error {
	var te *yaml.TypeError
	if errors.As(err, &te) {
		msgs := make([]string, len(te.Errors))
		for i, e := range te.Errors {
			msgs[i] = stripLine(e)
		}
		return errors.New(joinLines(msgs))
	}
	return err
}

func stripLine(s string) string {
	// "line 3: field x not found in type y" -> "field x not found in type y"
	if len(s) > 5 && s[:5] == "line " {
		for i := 5; i < len(s); i++ {
			if s[i] == ':' {
				return trimSpace(s[i+1:])
			}
			if s[i] < '0' || s[i] > '9' {
				break
			}
		}
	}
	return s
}

func trimSpace(s string) string {
	for len(s) > 0 && s[0] == ' ' {
		s = s[1:]
	}
	return s
}

func joinLines(ss []string) string {
	var b bytes.Buffer
	for i, s := range ss {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(s)
	}
	return b.String()
}

// cleanup calls m's Cleanup, if any.
func cleanup(m any) error {
	if c, ok := m.(CleanerUpper); ok {
		return c.Cleanup()
	}
	return nil
}

// Shared holds values that outlive a configuration, such as a WebAssembly
// compilation cache: Get makes each key's value once, and Close closes the
// values that are io.Closers when the gateway stops. Safe for concurrent
// use.
type Shared struct {
	mu     sync.Mutex
	values map[string]any
	closed bool
}

// Get returns key's value, making it with create on first use.
func (s *Shared) Get(key string, create func() (any, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("plugins: shared values closed")
	}
	if v, ok := s.values[key]; ok {
		return v, nil
	}
	v, err := create()
	if err != nil {
		return nil, err
	}
	if s.values == nil {
		s.values = make(map[string]any)
	}
	s.values[key] = v
	return v, nil
}

// Close closes the values that are io.Closers.
func (s *Shared) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	var errs []error
	for _, v := range s.values {
		if c, ok := v.(io.Closer); ok {
			errs = append(errs, c.Close())
		}
	}
	s.values = nil
	return errors.Join(errs...)
}
