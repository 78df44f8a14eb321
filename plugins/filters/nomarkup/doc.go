// Package nomarkup is the "nomarkup" filter: it keeps HTML markup out of
// the string values of a message's data, as CometD's NoMarkupFilter does,
// so that a client that puts received text into a page cannot be made to
// run a publisher's markup.
//
// In mode "escape" (the default), the characters < > & " ' of every
// string value become the entities &lt; &gt; &amp; &quot; &#39;, which a
// page shows as the original text. In mode "strip", tags (<b>, </p>,
// <img ...>, <!-- comments -->, <!doctype>, <?pi?>) are removed, an
// unclosed tag is removed up to the end of the string, and any other < or
// > becomes &lt; or &gt;; other entities are left as written. Neither mode
// leaves a raw < or > in a string value.
//
// String values are rewritten at any depth inside objects and arrays;
// object keys, numbers and other values are never touched. With fields,
// only the values under those top-level keys of a data object are (at any
// depth below them); data that is not an object is then left alone. The
// filter scans first: data without markup passes unchanged, without
// allocating. Rewritten data is re-encoded as valid JSON (strings left
// alone keep their bytes; rewritten ones are written with only the
// necessary escapes). It never rejects.
//
// Options:
//
//	filters:
//	  - channels: ["/chat/**"]
//	    inbound:
//	      - module: nomarkup
//	        mode: escape        # or strip; default escape
//	        fields: [text, nick] # top-level fields of data; default all
package nomarkup
