package reqresp

import (
	"context"

	"flowlab/flow"
)

var _ flow.Tearer = (*Scenario)(nil)

// Teardown has nothing to delete: request-response keeps nothing on a
// broker, and product-service's listener closes when Run ends.
func (s *Scenario) Teardown(context.Context) error { return nil }
