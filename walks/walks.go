// Package walks embeds the walkthroughs: one Markdown file each, in the
// format docs/WALKTHROUGHS.md describes; package walk loads and runs them.
package walks

import "embed"

// Files holds every walkthrough file, named <id>.md.
//
//go:embed *.md
var Files embed.FS
