// Package eventlog is the "log" listener: it logs session and
// subscription changes and queue overflows (CometD's listener events) at
// a configured level, at most maxPerSecond lines a second; the events
// over the limit are counted and summarised in one line at the end of the
// second (or at Cleanup), so a storm of connections cannot flood the log.
//
// Example:
//
//	listeners:
//	  - module: log
//	    level: info            # debug, info, warn or error; default info
//	    maxPerSecond: 100      # default 100
//	    events: [sessions, queues]   # sessions, subscriptions, queues; default all
package eventlog
