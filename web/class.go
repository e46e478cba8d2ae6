package web

// Teach is the instructor's page: the walkthroughs a class may start, by
// pattern, the classes started, and the presenter's link.
type Teach struct {
	Groups  []TeachGroup
	Classes []TeachClass
	Present string // presenter mode of the default lab
}

// TeachGroup is one pattern's walkthroughs.
type TeachGroup struct {
	Title string
	Walks []WalkLink
}

// TeachClass is one class as the instructor's page lists it.
type TeachClass struct {
	Code     string
	Walk     string // its title
	Learners int
	Created  string
}

// Join is the learner's join form, and what it says.
type Join struct {
	Code    string
	Name    string
	Known   bool   // the code is a class's
	Message string // why the last try failed, "" for none
}
