// Package maxsize is the "maxsize" filter: it refuses a message whose
// data, or ext, is larger than a bound, with the Bayeux error
// 413::message_too_large. Sizes are of the raw JSON, in bytes, as the
// message carries it.
//
// The gateway already bounds a whole request (limits.maxRequestBytes);
// maxsize bounds one message's data per channel, below that, and is a
// cheap first filter before costlier ones (jsonschema decodes data).
//
// Options:
//
//	filters:
//	  - channels: ["/chat/**"]
//	    inbound:
//	      - module: maxsize
//	        maxBytes: 4096    # data, required
//	        maxExtBytes: 1024 # ext; default no bound
package maxsize
