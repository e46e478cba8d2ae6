// Package static holds the browser's ES modules, styles and vendored libraries,
// embedded so that the one binary serves them.
package static

import "embed"

// Files are the static assets, served under /static/.
//
//go:embed *.js *.css vendor
var Files embed.FS
