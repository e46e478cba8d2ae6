package web

// Board is what the instructor's board page needs before its first poll of
// board.json, which brings everything that changes.
type Board struct {
	Code  string
	Walks []StartWalks // every shipped walkthrough, by pattern, for "choose the walkthrough"
}
