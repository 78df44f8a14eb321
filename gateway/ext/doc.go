// Package ext holds server-side Bayeux extensions that plug into the engine
// through engine.Extension. The acknowledged-delivery extension lives in the
// engine itself because it owns the session queue; the reload extension
// needs nothing on the server beyond accepting a connect from a known
// session on a new connection, which the engine does.
package ext
