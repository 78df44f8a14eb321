// Package jsonschema is the "jsonschema" filter: it refuses a message
// whose data does not validate against a JSON Schema, with the Bayeux
// error 400 and a short reason naming the first failing place in data
// and the keyword that failed, e.g. "400::data/user/age fails minimum".
// The reason never quotes data's values (only its keys, in the place).
//
// The schema is a file (relative names resolve against the configuration
// file's directory), compiled once at Provision with
// github.com/santhosh-tekuri/jsonschema/v6: drafts 4, 6, 7, 2019-09 and
// 2020-12 (2020-12 when the schema names none); a schema that does not
// compile fails the configuration load. References ($ref) may name other
// local files; network references are refused, so validation never waits
// on a network. The format keyword is an annotation, as 2020-12 says,
// unless assertFormat is set.
//
// Each message's data is decoded (numbers kept exact) and then validated.
// Decoding takes memory proportional to the size of data, a few times
// it, and data is bounded before it gets here: by the gateway's
// limits.maxRequestBytes (default 256 KiB) for clients, by the gRPC
// message size for the control API and backends. Put a maxsize filter
// before this one to bound it per channel, more tightly.
//
// Options:
//
//	filters:
//	  - channels: ["/orders/**"]
//	    inbound:
//	      - module: maxsize
//	        maxBytes: 8192
//	      - module: jsonschema
//	        file: schemas/order.json # required
//	        assertFormat: true       # default false
package jsonschema
