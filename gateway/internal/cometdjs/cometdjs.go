// Package cometdjs embeds the official CometD JavaScript client, the ES
// modules of the npm package "cometd" (version Version, Apache License 2.0,
// whose text is served as LICENSE next to the modules), so that the
// gateway's own pages (the demo chat, the status page) run the client that
// users run. The files are copied unchanged by scripts/vendor-cometd.sh;
// README.md says how to update them.
package cometdjs

import (
	"embed"
	"io/fs"
	"net/http"
)

// Version is the version of the npm package "cometd" the files come from.
const Version = "9.0.0"

//go:embed cometd
var files embed.FS

// FS returns the vendored files: cometd.js (the package's entry module,
// which re-exports CometD, the extensions and the transports), the modules
// it imports by relative path, LICENSE and package.json. The result is
// read-only and safe for concurrent use.
func FS() fs.FS {
	sub, err := fs.Sub(files, "cometd")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	return sub
}

// Handler serves FS by file name ("/cometd.js", "/AckExtension.js",
// "/LICENSE"), with the JavaScript MIME type that module scripts need. Mount
// it under a prefix with http.StripPrefix; pages then import the client
// with `import {CometD} from "./js/cometd/cometd.js"`. It is safe for
// concurrent use.
func Handler() http.Handler {
	return http.FileServerFS(FS())
}
