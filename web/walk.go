package web

// WalkPanel is the walkthrough a pattern page runs beside its diagram. The
// page fetches the steps themselves from /labs/{lab}/walk.
type WalkPanel struct {
	ID      string
	Title   string
	Minutes int
	// Gone: the page was asked for this walk, but its lab no longer runs it
	// (reset as a whole, or another walk started): the panel offers to start
	// it again in a fresh sandbox.
	Gone bool
}

// WalkLink starts a walkthrough of the page's pattern in a fresh sandbox.
type WalkLink struct {
	ID      string
	Title   string
	Minutes int
}
