// Package bayeux holds the Bayeux protocol's vocabulary: messages, advice,
// errors in CometD's "code:args:message" form, channel names with their
// kinds and wildcard matching, and the JSON batch decoder and encoder.
//
// It does no I/O and keeps no state; everything here is safe for
// concurrent use. Decoded messages keep data and ext as raw JSON so that a
// broadcast can be encoded once and its bytes shared by every subscriber.
package bayeux
