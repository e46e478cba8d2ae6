package walk

import "flowlab/flow"

// Holds evaluates check step i against the lab now, from the baseline it
// would measure from if the learner were on it, and changes nothing. The
// solvability test asks it before each act, so that no check can pass by
// doing nothing.
func (s *Session) Holds(i int) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if i < 0 || i >= len(s.w.Steps) || s.w.Steps[i].Kind != KindCheck {
		return false, flow.Errorf(flow.Invalid, "step %d is not a check", i)
	}
	v, err := s.w.Steps[i].check.run(take(s.lab).env(s.baseline(i)))
	if err != nil {
		return false, err
	}
	ok, _ := v.(bool)
	return ok, nil
}
