package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/base64"
	"net/http"
	"strings"
	"time"

	"flowlab/flow"
)

// lab returns the lab with id, if it is open.
func (a *App) lab(id string) (*labRun, bool) {
	a.labsMu.RLock()
	defer a.labsMu.RUnlock()
	l, ok := a.labs[id]
	return l, ok
}

// allLabs returns the open labs, in no order.
func (a *App) allLabs() []*labRun {
	a.labsMu.RLock()
	defer a.labsMu.RUnlock()
	out := make([]*labRun, 0, len(a.labs))
	for _, l := range a.labs {
		out = append(out, l)
	}
	return out
}

// addLab registers l unless max labs are open already.
func (a *App) addLab(l *labRun, max int) bool {
	a.labsMu.Lock()
	defer a.labsMu.Unlock()
	if len(a.labs) >= max {
		return false
	}
	a.labs[l.lab.ID] = l
	return true
}

func (a *App) removeLab(id string) {
	a.labsMu.Lock()
	defer a.labsMu.Unlock()
	delete(a.labs, id)
	a.gone[id] = true
}

func (a *App) tornDown(id string) bool {
	a.labsMu.RLock()
	defer a.labsMu.RUnlock()
	return a.gone[id]
}

// newLabID is 8 random lower-case base32 characters (40 bits): a sandbox's
// address is not guessable, and it is a valid lab id.
func newLabID() string {
	b := make([]byte, 5)
	rand.Read(b) // never fails (crypto/rand)
	return strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

// handleNewLab opens a sandbox and sends the browser to its first page.
// Only a page of flowlab's own may ask, as for a restart.
func (a *App) handleNewLab(w http.ResponseWriter, r *http.Request) {
	if !sameOrigin(r) {
		a.pageError(w, r, flow.Errorf(flow.Invalid, "a new sandbox must be asked for from flowlab's own page"))
		return
	}
	l, err := a.newSandbox(w, r, false)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	http.Redirect(w, r, "/labs/"+l.lab.ID+"/"+l.scenarios[0].Name(), http.StatusSeeOther)
}

// newSandbox opens a sandbox, exact or not (see openLab), and gives w its
// owner cookie.
func (a *App) newSandbox(w http.ResponseWriter, r *http.Request, exact bool) (*labRun, error) {
	full := flow.Errorf(flow.Unavailable, "flowlab already runs %d labs, its limit: a sandbox unused for %v is torn down, "+
		"so try again later, or ask whoever runs flowlab to raise -max-labs (FLOWLAB_MAX_LABS)", a.cfg.MaxLabs, a.cfg.SandboxTTL)
	if len(a.allLabs()) >= a.cfg.MaxLabs {
		return nil, full
	}
	l, err := a.openLab(newLabID(), exact)
	if err != nil {
		return nil, err
	}
	l.lastUsed = time.Now()
	token := make([]byte, 32)
	rand.Read(token) // never fails (crypto/rand)
	cookie := base64.RawURLEncoding.EncodeToString(token)
	l.owner = sha256.Sum256([]byte(cookie))
	if !a.addLab(l, a.cfg.MaxLabs) { // another request took the last place
		l.close()
		return nil, full
	}
	// A session cookie, sent to this sandbox's pages only, which its
	// scripts cannot read and no other site's page can send.
	http.SetCookie(w, &http.Cookie{
		Name: ownerCookie(l.lab.ID), Value: cookie, Path: "/labs/" + l.lab.ID,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil,
	})
	a.log.Info("sandbox opened", "lab", l.lab.ID)
	return l, nil
}

// errWatchOnly refuses a change to a sandbox from anyone but its maker.
var errWatchOnly = flow.Errorf(flow.Forbidden, "this sandbox belongs to whoever made it: you can watch it; make your own with New sandbox")

// ownerCookie names the cookie holding the owner token of sandbox id.
func ownerCookie(id string) string { return "flowlab_" + id }

// mayChange says whether r may change l: anyone may change the default lab,
// the shared one a classroom's projector shows; a sandbox only its maker,
// whose browser holds the token it was given.
func (l *labRun) mayChange(r *http.Request) bool {
	if !l.sandbox {
		return true
	}
	c, err := r.Cookie(ownerCookie(l.lab.ID))
	if err != nil {
		return false
	}
	h := sha256.Sum256([]byte(c.Value))
	return subtle.ConstantTimeCompare(h[:], l.owner[:]) == 1
}

// wake marks s as opened and starts its run if it is not running: a
// sandbox's scenarios start when first opened, and any scenario stopped for
// want of a browser starts again. The first run uses the scenario as opened;
// a later one opens it again, as a restart does.
func (a *App) wake(l *labRun, s *scenarioRun, opened bool) error {
	l.life.Lock()
	defer l.life.Unlock()
	if l.gone {
		return a.goneError()
	}
	now := time.Now()
	if opened {
		l.lastUsed = now
	}
	s.watched = now
	if s.stop != nil {
		return nil
	}
	name := l.lab.ID + "/" + s.Name()
	if s.ran {
		next, err := s.sup.open(s.emit)
		if err != nil {
			a.log.Error("scenario reopen failed", "scenario", name, "err", err)
			return flow.Errorf(flow.Unavailable, "%s could not start again: %s", s.Title(), flow.MessageOf(err))
		}
		s.reopen(next)
		s.hub.Reopen()
		s.tap.clear()
	}
	ctx, stop := context.WithCancel(a.runCtx)
	stopped := make(chan struct{})
	a.runs.Add(1)
	if !a.start(name, func(context.Context) error {
		defer close(stopped)
		defer a.runs.Add(-1)
		return s.Run(ctx)
	}) {
		a.runs.Add(-1)
		stop()
		return flow.Errorf(flow.Unavailable, "flowlab is shutting down")
	}
	s.stop, s.stopped, s.ran = stop, stopped, true
	a.log.Info("scenario started", "scenario", name)
	return nil
}

func (a *App) goneError() error {
	return flow.Errorf(flow.NotFound, "this sandbox was torn down after %v unused: make a new one", a.cfg.SandboxTTL)
}

// halt ends s's run and waits for it; the caller holds l.life.
func (s *scenarioRun) halt() {
	if s.stop == nil {
		return
	}
	s.stop()
	<-s.stopped
	s.stop, s.stopped = nil, nil
}

// sweepIdle stops the load of every scenario nobody has watched for
// -idle-stop, and tears down every sandbox nobody has opened for
// -sandbox-ttl, until ctx ends.
func (a *App) sweepIdle(ctx context.Context) {
	every := min(a.cfg.IdleStop, a.cfg.SandboxTTL) / 4
	t := time.NewTicker(min(max(every, 10*time.Millisecond), time.Second))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, l := range a.allLabs() {
				if a.sweepLab(l, now) {
					a.teardown(ctx, l, "nobody opened it for "+a.cfg.SandboxTTL.String())
				}
			}
		}
	}
}

// sweepLab stops l's idle scenarios and says whether l, a sandbox, has gone
// unused for its whole time to live.
func (a *App) sweepLab(l *labRun, now time.Time) (expired bool) {
	l.life.Lock()
	defer l.life.Unlock()
	for _, s := range l.scenarios {
		if s.stop == nil {
			continue
		}
		if s.hub.Clients() > 0 {
			s.watched, l.lastUsed = now, now
			continue
		}
		if now.Sub(s.watched) >= a.cfg.IdleStop {
			s.halt()
			a.log.Info("scenario stopped: nobody watched it", "scenario", l.lab.ID+"/"+s.Name(), "after", a.cfg.IdleStop)
		}
	}
	return l.sandbox && now.Sub(l.lastUsed) >= a.cfg.SandboxTTL
}

// teardown stops every run of a sandbox, deletes what its scenarios made on
// the brokers, frees what they hold and forgets it; why is for the log. The
// deletes are bounded and end with ctx, so a stopping flowlab never waits on
// a broker.
func (a *App) teardown(ctx context.Context, l *labRun, why string) {
	l.end() // nothing of it starts again, though its pages still find it
	for _, s := range l.scenarios {
		t, ok := s.sup.current().(flow.Tearer)
		if !s.ran || !ok {
			continue
		}
		tctx, cancel := context.WithTimeout(ctx, resetTimeout)
		if err := t.Teardown(tctx); err != nil {
			a.log.Warn("sandbox teardown left broker objects", "scenario", l.lab.ID+"/"+s.Name(), "err", err)
		}
		cancel()
	}
	// Only now is it gone: whoever counts the open labs finds its broker
	// objects deleted.
	a.removeLab(l.lab.ID)
	a.log.Info("sandbox torn down", "lab", l.lab.ID, "why", why)
}

// end stops every run of l and frees what its never-run scenarios hold:
// nothing of it starts again.
func (l *labRun) end() {
	// First, and not under the life lock: the walk's commands may be
	// waking a scenario.
	l.setWalk(nil)
	l.life.Lock()
	defer l.life.Unlock()
	l.gone = true
	var never []*scenarioRun
	for _, s := range l.scenarios {
		s.halt()
		if !s.ran {
			never = append(never, s)
		}
	}
	(&labRun{scenarios: never}).close()
}
