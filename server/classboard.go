package main

import (
	"net/http"

	"flowlab/flow"
	"flowlab/web"
)

// handleClassBoard is the instructor's board of one class. The page holds
// what does not change; static/board.js fills it from board.json.
func (a *App) handleClassBoard(w http.ResponseWriter, r *http.Request) {
	if !a.instructorOnly(w, r) {
		return
	}
	c, err := a.classOf(r)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	l, ok := a.lab(a.home)
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.Unavailable, "the lab %q is not open", a.home))
		return
	}
	b := web.Board{Code: c.Code}
	for _, s := range l.scenarios {
		g := web.StartWalks{Title: s.Title()}
		for _, wk := range a.walkOrder {
			if wk.Pattern == s.Name() {
				g.Walks = append(g.Walks, web.StartWalk{ID: wk.ID, Title: wk.Title})
			}
		}
		if len(g.Walks) > 0 {
			b.Walks = append(b.Walks, g)
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	if err := web.BoardPage(b).Render(r.Context(), w); err != nil {
		a.log.Error("render class board", "err", err)
	}
}
