// Package bayeux holds the Bayeux protocol's vocabulary: messages, advice,
// errors in CometD's "code:args:message" form, channel names with their
// kinds and wildcard matching, and the JSON batch decoder and encoder.
//
// It does no I/O and keeps no state; everything here is safe for
// concurrent use. Decoded messages keep data and ext as raw JSON so that a
// broadcast can be encoded once and its bytes shared by every subscriber.
//
// Everything written to a client must be valid UTF-8 and valid JSON, or
// browsers fail the websocket frame and drop the connection. [Decode]
// refuses input that is not UTF-8 ([ErrInvalidUTF8]); JSON from other
// sources (control API, backends) must pass [ValidJSON] before it becomes a
// message's Data or Ext; and [AppendMessage] never writes invalid UTF-8,
// whatever a message holds.
package bayeux
