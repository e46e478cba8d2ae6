package main

import (
	"net/http"
	"reflect"
	"slices"
	"time"

	progressdb "flowlab/server/progress"
	"flowlab/walk"
	"flowlab/web"
)

// learnerCookie names the anonymous learner a browser is: a random id that
// keys their walkthrough progress and nothing else.
const (
	learnerCookie = "flowlab_learner"
	learnerMaxAge = 365 * 24 * time.Hour // renewed on each visit of the start page
)

// learnerOf is the learner r comes from, "" when it names none. Only one
// cookie of exactly NewLearner's format counts: a forged or doubled value is
// never used as a key.
func learnerOf(r *http.Request) string {
	cs := r.CookiesNamed(learnerCookie)
	if len(cs) != 1 || !progressdb.ValidLearner(cs[0].Value) {
		return ""
	}
	return cs[0].Value
}

// learner is the learner r comes from; one without a valid cookie becomes a
// new learner, and gets the cookie. The cookie is set again either way, so it
// lasts a year after the last visit.
func learner(w http.ResponseWriter, r *http.Request) string {
	id := learnerOf(r)
	if id == "" {
		id = progressdb.NewLearner()
	}
	http.SetCookie(w, &http.Cookie{Name: learnerCookie, Value: id, Path: "/", MaxAge: int(learnerMaxAge / time.Second),
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	return id
}

// startWalks is every walkthrough as the start page lists it, with how far
// learner got in each. Progress that cannot be read is logged, and the page
// shown without it.
func (a *App) startWalks(learner string) []web.StartWalk {
	p, err := a.learners.Learner(learner)
	if err != nil {
		a.log.Error("read a learner's progress", "err", err)
	}
	var out []web.StartWalk
	for _, w := range a.walkOrder {
		sw := web.StartWalk{ID: w.ID, Pattern: w.Pattern, Title: w.Title, Minutes: w.Minutes, Steps: len(w.Steps)}
		if len(w.Learn) > 0 {
			sw.Learn = w.Learn[0]
		}
		for _, pw := range p.Walks {
			if pw.Walk != w.ID {
				continue
			}
			sw.Started, sw.Finished = true, !pw.Finished.IsZero()
			// A step number past the walk's end (its file since shortened) is not counted.
			for _, step := range pw.Done {
				if step < sw.Steps {
					sw.Done++
				}
			}
		}
		out = append(out, sw)
	}
	return out
}

// walkProgress is one walk in a learner's progress download: what the store
// keeps, with the walk's title and step count for a person reading it.
type walkProgress struct {
	progressdb.Walk
	Title string `json:"title,omitempty"`
	Steps int    `json:"steps,omitempty"`
}

// handleProgress downloads the asking learner's own progress, by their
// cookie: nobody else's can be named. Without a cookie it is an empty list.
func (a *App) handleProgress(w http.ResponseWriter, r *http.Request) {
	out := struct {
		Learner string         `json:"learner,omitempty"`
		Walks   []walkProgress `json:"walks"`
	}{Walks: []walkProgress{}}
	if id := learnerOf(r); id != "" {
		p, err := a.learners.Learner(id)
		if err != nil {
			a.jsonError(w, err)
			return
		}
		out.Learner = id
		for _, pw := range p.Walks {
			wp := walkProgress{Walk: pw}
			if wk := a.walk(pw.Walk); wk != nil {
				wp.Title, wp.Steps = wk.Title, len(wk.Steps)
			}
			out.Walks = append(out.Walks, wp)
		}
	}
	w.Header().Set("Content-Disposition", `attachment; filename="flowlab-progress.json"`)
	w.Header().Set("Cache-Control", "no-store") // one learner's own: no cache keeps it
	writeJSON(w, http.StatusOK, out)
}

// walk is the loaded walkthrough id, nil when there is none.
func (a *App) walk(id string) *walk.Walk {
	for _, w := range a.walkOrder {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// recordSession merges into the learner's progress what their walkthrough's
// state shows: steps done, checks passed (assisted or not), answers and how
// they were judged, and the end once every step is done. It is idempotent,
// and writes nothing when the file already holds it all, so it may be called
// with every state the learner's page is sent.
func (a *App) recordSession(learner string, st walk.SessionState) error {
	p, err := a.learners.Learner(learner)
	if err != nil {
		return err
	}
	merge := func(w *progressdb.Walk) error {
		all := len(st.Steps) > 0
		for i, s := range st.Steps {
			var err error
			switch {
			case s.Kind == walk.KindCheck && s.Status == "passed":
				err = w.MarkPassed(i, s.Assisted)
			case s.Kind == walk.KindPredict && s.Answer != "":
				if err = w.MarkAnswered(i, s.Answer); err == nil && s.Correct != nil {
					err = w.MarkJudged(i, *s.Correct)
				}
			case s.Done:
				err = w.MarkDone(i)
			}
			if err != nil {
				return err
			}
			all = all && s.Done
		}
		if all {
			w.MarkFinished(time.Now())
		}
		return nil
	}
	for _, had := range p.Walks {
		if had.Walk != st.Walk {
			continue
		}
		// Merged into a copy first: most states a page is sent hold nothing new.
		w := had
		w.Done, w.Passed, w.Assisted, w.Predictions = slices.Clone(had.Done), slices.Clone(had.Passed), slices.Clone(had.Assisted), slices.Clone(had.Predictions)
		if err := merge(&w); err != nil || reflect.DeepEqual(w, had) {
			return err
		}
	}
	return a.learners.Record(learner, st.Walk, merge)
}
