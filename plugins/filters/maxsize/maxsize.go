package maxsize

import (
	"context"
	"fmt"

	"github.com/cometgate/cometgate/plugins"
)

// Modules returns the package's modules for a plugins.Registry.
func Modules() []plugins.ModuleInfo {
	return []plugins.ModuleInfo{{
		Kind: plugins.KindFilter,
		Name: "maxsize",
		New:  func() any { return new(Filter) },
		Doc:  "refuse messages whose data or ext is larger than a bound (413)",
	}}
}

// Filter is the maxsize module. Its exported fields are its options; it
// is safe for concurrent use.
type Filter struct {
	// MaxBytes bounds the size of data, in bytes. Required, > 0.
	MaxBytes int `yaml:"maxBytes"`
	// MaxExtBytes bounds the size of ext, in bytes. Default 0: no bound.
	MaxExtBytes int `yaml:"maxExtBytes"`
}

// Interface guards.
var (
	_ plugins.Filter    = (*Filter)(nil)
	_ plugins.Validator = (*Filter)(nil)
)

// ErrTooLarge is the rejection of a message over a bound.
var ErrTooLarge = &plugins.Rejection{Code: 413, Reason: "message_too_large"}

// Validate checks the options.
func (f *Filter) Validate() error {
	if f.MaxBytes <= 0 {
		return fmt.Errorf("maxBytes: %d: must be > 0", f.MaxBytes)
	}
	if f.MaxExtBytes < 0 {
		return fmt.Errorf("maxExtBytes: %d: must be >= 0 (0: no bound)", f.MaxExtBytes)
	}
	return nil
}

// Filter returns ErrTooLarge for a message over a bound, nil otherwise.
func (f *Filter) Filter(_ context.Context, m *plugins.Message) error {
	if len(m.Data) > f.MaxBytes || f.MaxExtBytes > 0 && len(m.Ext) > f.MaxExtBytes {
		return ErrTooLarge
	}
	return nil
}
