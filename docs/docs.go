// Package docs embeds the pages whose names programs rely on: the facts each
// node sends (FACTS.md) and the counters and ledger names of each pattern
// (COUNTERS.md). Walkthrough checks are validated against them, so the page a
// person reads and the names a program accepts are one text.
package docs

import _ "embed"

// Facts is docs/FACTS.md.
//
//go:embed FACTS.md
var Facts string

// Counters is docs/COUNTERS.md.
//
//go:embed COUNTERS.md
var Counters string
