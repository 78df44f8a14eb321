// Package regex is the "regex" filter: rules that reject a message, or
// rewrite it, when the string values of its data match a regular
// expression or contain a listed word, in the spirit of CometD's
// RegexFilter and of chat servers' word filters.
//
// Each rule has either a pattern (Go's RE2 syntax: linear time, no
// back-references) or a list of words, and an action. Words match
// case-insensitively (Unicode simple folding, as RE2's (?i)) and only as
// whole words: not preceded or followed by a letter, digit, combining
// mark or underscore, in any script (so "ass" does not match in "class";
// RE2's \b knows only ASCII). A listed phrase ("two words", "c++") matches
// the same words with the same separators; an entry must start with a
// letter, digit or underscore.
//
//   - reject: the message is refused with 403 and the rule's reason
//     (default "forbidden_content").
//   - replace: each match becomes the replacement, default "***"; in a
//     pattern rule it may name groups ($1, ${name}; $$ for a $), in a
//     words rule it is literal. An explicit "" deletes the match.
//
// Rules apply in order to each string value of data (decoded, so an
// escaped \u0062ad is "bad"), at any depth; a replace rule's result is
// what the later rules see. Object keys and other values are never
// matched. With fields, only the values under those top-level keys of a
// data object are. Data with no match passes unchanged, without
// allocating; rewritten data is re-encoded as valid JSON.
//
// Patterns and word lists are compiled once, at Provision. A word list is
// a hash table: the text is split into words once and each is looked up,
// so 10,000 words cost what 1 does. (One regular expression alternating
// the words, the usual way, costs Go's regexp package 40 µs per 200-byte
// message with 5 words and about 1 ms with 100.) A pattern costs a few
// microseconds per 200 bytes of strings; prefer words where they do.
//
// Options:
//
//	filters:
//	  - channels: ["/chat/**"]
//	    inbound:
//	      - module: regex
//	        fields: [text]          # default: all string values
//	        rules:
//	          - words: [darn, heck]
//	            action: replace     # replacement defaults to "***"
//	          - pattern: '\b\d{4}[ -]?\d{4}[ -]?\d{4}[ -]?\d{4}\b'
//	            action: replace
//	            replacement: "[card]"
//	          - pattern: '(?i)https?://'
//	            action: reject      # the default action
//	            reason: no_links
package regex
