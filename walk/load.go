package walk

import (
	"errors"
	"io/fs"

	"flowlab/flow"
)

// Catalog is every name a walk of one pattern may use: counters and ledger
// names (docs/COUNTERS.md), nodes and their facts (docs/FACTS.md), event
// kinds, and the scenario's knobs and presets.
type Catalog struct{}

// NewCatalog returns the catalog of pattern, with its names from the embedded
// docs and the knobs and presets its scenario declares.
func NewCatalog(pattern string, knobs []flow.Knob, presets []flow.Preset) (*Catalog, error) {
	return nil, errors.New("not yet")
}

// Load reads every *.md file of fsys as a walk, checked against the catalog
// of its pattern. The error joins every problem found, each as
// walks/<file>.md:<line>: <what is wrong>.
func Load(fsys fs.FS, cats map[string]*Catalog) ([]*Walk, error) {
	return nil, errors.New("not yet")
}

type text struct{}
type program struct{}
