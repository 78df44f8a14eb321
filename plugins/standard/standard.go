// Package standard registers Cometgate's built-in plugin modules: the
// filters nomarkup, regex, maxsize, jsonschema, ratelimit and wasm, the
// authorizer policy, the jwt authenticator and the log listener.
// Embedders that compile in modules of their own start from Registry and
// Register theirs on it.
package standard

import (
	"github.com/cometgate/cometgate/plugins"
	"github.com/cometgate/cometgate/plugins/authz"
	"github.com/cometgate/cometgate/plugins/filters/jsonschema"
	"github.com/cometgate/cometgate/plugins/filters/maxsize"
	"github.com/cometgate/cometgate/plugins/filters/nomarkup"
	"github.com/cometgate/cometgate/plugins/filters/ratelimit"
	"github.com/cometgate/cometgate/plugins/filters/regex"
	"github.com/cometgate/cometgate/plugins/jwtauth"
	"github.com/cometgate/cometgate/plugins/listeners/eventlog"
	"github.com/cometgate/cometgate/plugins/wasm"
)

// Registry returns a new registry holding every built-in module.
func Registry() *plugins.Registry {
	r := plugins.NewRegistry()
	for _, list := range [][]plugins.ModuleInfo{
		nomarkup.Modules(), regex.Modules(), maxsize.Modules(), jsonschema.Modules(), ratelimit.Modules(), wasm.Modules(),
		authz.Modules(), jwtauth.Modules(), eventlog.Modules(),
	} {
		for _, m := range list {
			r.MustRegister(m)
		}
	}
	return r
}
