package config

import _ "embed" // for the reference configuration

//go:embed gateway.yaml
var reference string

// Reference returns the annotated reference configuration, the text of
// config/gateway.yaml: every setting at its default with a comment saying
// what it does, and backends, routes and auth as commented-out examples.
// It loads as [Default], and `gateway genconfig` prints it.
func Reference() string { return reference }
