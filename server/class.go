package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/time/rate"

	"flowlab/flow"
	progressdb "flowlab/server/progress"
	"flowlab/walk"
	"flowlab/web"
)

// Cookies of the classroom: the instructor's (the key itself) and a
// learner's (their token; only its SHA-256 is kept).
const (
	teachCookie = "flowlab_teach"
	classCookie = "flowlab_class"
)

// Join rate limits: per client address, and over all of them. A code that
// is not a class costs double, so a guesser runs out first.
const (
	joinBurst       = 10
	joinRate        = 2
	joinGlobalBurst = 120
	joinGlobalRate  = 20
	paceBurst       = 20
	paceRate        = 10
	paceMax         = 1 << 10 // bytes of one pace command
	nameMax         = 24      // characters of a display name
)

// stuckAfter is how long a learner may stay on one step before the board
// shows them stuck.
const stuckAfter = 3 * time.Minute

// byInstructor names the instructor as the sender of the knob changes
// pacing makes.
const byInstructor = "the instructor"

// notInstructor is the sentence of every refusal to a non-instructor.
const notInstructor = "This is the instructor's page: open the link flowlab printed when it started."

// classRoom is what the classroom keeps in memory: which sandbox is whose,
// and the rate limiters. The classes themselves live in the progress file.
type classRoom struct {
	mu      sync.Mutex
	byLab   map[string]string        // sandbox id → its member's key
	addrs   map[string]*rate.Limiter // joins per client address
	global  *rate.Limiter
	pace    *rate.Limiter
	rebuild map[string]*sync.Mutex // per member key: one rebuild of a sandbox at a time
}

func newClassRoom() *classRoom {
	return &classRoom{byLab: map[string]string{}, addrs: map[string]*rate.Limiter{},
		global: rate.NewLimiter(joinGlobalRate, joinGlobalBurst), pace: rate.NewLimiter(paceRate, paceBurst),
		rebuild: map[string]*sync.Mutex{}}
}

// allowJoin takes cost from the client's and the global join budgets; a
// refusal takes nothing from the client's.
func (c *classRoom) allowJoin(r *http.Request, cost int) bool {
	addr, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		addr = r.RemoteAddr
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	l, ok := c.addrs[addr]
	if !ok {
		if len(c.addrs) >= 4096 { // forget the addresses whose budget is full again
			for a, l := range c.addrs {
				if l.Tokens() >= joinBurst {
					delete(c.addrs, a)
				}
			}
		}
		l = rate.NewLimiter(joinRate, joinBurst)
		c.addrs[addr] = l
	}
	now := time.Now()
	if !l.AllowN(now, cost) {
		return false
	}
	return c.global.AllowN(now, cost)
}

func (c *classRoom) memberOfLab(lab string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k, ok := c.byLab[lab]
	return k, ok
}

func (c *classRoom) setLab(lab, key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byLab[lab] = key
}

func (c *classRoom) rebuildLock(key string) *sync.Mutex {
	c.mu.Lock()
	defer c.mu.Unlock()
	m, ok := c.rebuild[key]
	if !ok {
		m = &sync.Mutex{}
		c.rebuild[key] = m
	}
	return m
}

// teachKeyOK is a key given by flag or environment: long and URL-safe, as
// it travels in a link.
var teachKeyOK = regexp.MustCompile(`^[A-Za-z0-9_.~-]{16,}$`)

// instructor says whether r carries the instructor's cookie.
func (a *App) instructor(r *http.Request) bool {
	cs := r.CookiesNamed(teachCookie)
	return len(cs) == 1 && subtle.ConstantTimeCompare([]byte(cs[0].Value), []byte(a.teachKey)) == 1
}

// instructorOnly answers 403 to anyone but the instructor — a JSON error to
// a request for data, the page otherwise — and says whether r may go on.
func (a *App) instructorOnly(w http.ResponseWriter, r *http.Request) bool {
	if a.instructor(r) {
		return true
	}
	err := flow.Errorf(flow.Forbidden, notInstructor)
	if path.Ext(r.URL.Path) != "" || strings.HasSuffix(r.URL.Path, "/pace") {
		a.jsonError(w, err)
	} else {
		a.pageError(w, r, err)
	}
	return false
}

// instructorLink is the link flowlab prints at start.
func (a *App) instructorLink() string {
	return pageURL(a.web.Addr()) + "/teach?key=" + url.QueryEscape(a.teachKey)
}

// handleTeach is the instructor's page. Its link carries the key once: it
// becomes a cookie, and the address bar a projector shows loses it.
func (a *App) handleTeach(w http.ResponseWriter, r *http.Request) {
	if keys, ok := r.URL.Query()["key"]; ok {
		if len(keys) != 1 || subtle.ConstantTimeCompare([]byte(keys[0]), []byte(a.teachKey)) != 1 {
			a.pageError(w, r, flow.Errorf(flow.Forbidden, notInstructor))
			return
		}
		http.SetCookie(w, &http.Cookie{Name: teachCookie, Value: a.teachKey, Path: "/",
			HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil})
		http.Redirect(w, r, "/teach", http.StatusSeeOther)
		return
	}
	if !a.instructorOnly(w, r) {
		return
	}
	l, ok := a.lab(a.home)
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.Unavailable, "the lab %q is not open", a.home))
		return
	}
	t := web.Teach{Present: "/labs/" + a.home + "/" + l.scenarios[0].Name() + "?present=1"}
	for _, s := range l.scenarios {
		g := web.TeachGroup{Title: s.Title()}
		for _, wk := range a.walkOrder {
			if wk.Pattern == s.Name() {
				g.Walks = append(g.Walks, web.WalkLink{ID: wk.ID, Title: wk.Title, Minutes: wk.Minutes})
			}
		}
		if len(g.Walks) > 0 {
			t.Groups = append(t.Groups, g)
		}
	}
	classes, err := a.learners.Classes()
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	for _, c := range classes {
		ms, err := a.learners.Members(c.Code)
		if err != nil {
			a.pageError(w, r, err)
			return
		}
		title := c.Walk
		if wk := a.walk(c.Walk); wk != nil {
			title = wk.Title
		}
		t.Classes = append(t.Classes, web.TeachClass{Code: c.Code, Walk: title, Learners: len(ms),
			Created: c.Created.Local().Format("2 Jan 15:04")})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	web.TeachPage(t).Render(r.Context(), w)
}

// handleNewClass starts a class on the walkthrough the form names and
// sends the instructor to its board.
func (a *App) handleNewClass(w http.ResponseWriter, r *http.Request) {
	if !a.instructorOnly(w, r) {
		return
	}
	if !sameOrigin(r) {
		a.pageError(w, r, flow.Errorf(flow.Invalid, "a class must be started from flowlab's own page"))
		return
	}
	wk, ok := a.walks[r.PostFormValue("walk")]
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.Invalid, "there is no walkthrough %q: choose one on the instructor's page", r.PostFormValue("walk")))
		return
	}
	c, err := a.learners.NewClass(wk.ID)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	a.log.Info("class started", "code", c.Code, "walk", wk.ID)
	http.Redirect(w, r, "/classes/"+c.Code+"/board", http.StatusSeeOther)
}

// classOf is the class the path's code names; a missing one is a NotFound
// error.
func (a *App) classOf(r *http.Request) (progressdb.Class, error) {
	code := normCode(r.PathValue("code"))
	c, ok, err := a.learners.Class(code)
	if err == nil && !ok {
		err = flow.Errorf(flow.NotFound, "there is no class %q", code)
	}
	return c, err
}

// normCode is a code as typed: any case, spaces around it.
func normCode(s string) string { return strings.ToUpper(strings.TrimSpace(s)) }

// checkName is a display name, trimmed, or why it is not one.
func checkName(s string) (string, error) {
	s = strings.TrimSpace(s)
	n := utf8.RuneCountInString(s)
	ok := n >= 1 && n <= nameMax && utf8.ValidString(s)
	for _, c := range s {
		ok = ok && (unicode.IsLetter(c) || unicode.IsDigit(c) || strings.ContainsRune(" -_.'", c))
	}
	if !ok {
		return "", flow.Errorf(flow.Invalid, "a name is 1 to %d characters: letters, digits, spaces and - _ . ' only", nameMax)
	}
	return s, nil
}

// tokenKey is the key a learner's token is kept under: its SHA-256.
func tokenKey(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// memberOf is the class member r's cookie names, if they are of class
// code: a cookie of another class, forged or doubled counts as none.
func (a *App) memberOf(r *http.Request, code string) (string, progressdb.Member, bool) {
	cs := r.CookiesNamed(classCookie)
	if len(cs) != 1 {
		return "", progressdb.Member{}, false
	}
	if b, err := base64.RawURLEncoding.Strict().DecodeString(cs[0].Value); err != nil || len(b) != 32 {
		return "", progressdb.Member{}, false
	}
	key := tokenKey(cs[0].Value)
	m, ok, err := a.learners.Member(key)
	if err != nil || !ok || (code != "" && m.Class != code) {
		return "", progressdb.Member{}, false
	}
	return key, m, true
}

// joinForm renders the join page with status and what it says.
func (a *App) joinForm(w http.ResponseWriter, r *http.Request, status int, j web.Join) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	web.JoinPage(j).Render(r.Context(), w)
}

func (a *App) tooMany(w http.ResponseWriter, r *http.Request, j web.Join) {
	j.Message = fmt.Sprintf("Too many joins at once: at most %d, then %d a second from one computer. Wait a few seconds and try again.", joinBurst, joinRate)
	a.joinForm(w, r, http.StatusTooManyRequests, j)
}

// handleJoinForm is the empty join form; a returning learner goes back to
// their sandbox.
func (a *App) handleJoinForm(w http.ResponseWriter, r *http.Request) {
	if key, m, ok := a.memberOf(r, ""); ok {
		a.returnTo(w, r, key, m)
		return
	}
	a.joinForm(w, r, http.StatusOK, web.Join{})
}

// handleJoinCode is the join form with the code filled in; an unknown code
// is a 404 with the form.
func (a *App) handleJoinCode(w http.ResponseWriter, r *http.Request) {
	code := normCode(r.PathValue("code"))
	j := web.Join{Code: code}
	if _, ok := a.joinable(w, r, j); !ok {
		return
	}
	if key, m, ok := a.memberOf(r, code); ok {
		a.returnTo(w, r, key, m)
		return
	}
	j.Known = true
	a.joinForm(w, r, http.StatusOK, j)
}

// joinable is the class j names, counted against the join limits (a code
// that is no class's counts double); an error, too many joins or an unknown
// code is answered here, and ok is false.
func (a *App) joinable(w http.ResponseWriter, r *http.Request, j web.Join) (c progressdb.Class, ok bool) {
	c, known, err := a.learners.Class(j.Code)
	if err != nil {
		a.pageError(w, r, err)
		return c, false
	}
	if !a.classes.allowJoin(r, costOf(known)) {
		a.tooMany(w, r, j)
		return c, false
	}
	if !known {
		j.Message = fmt.Sprintf("There is no class %q: check the code your instructor shows.", j.Code)
		a.joinForm(w, r, http.StatusNotFound, j)
		return c, false
	}
	return c, true
}

func costOf(known bool) int {
	if known {
		return 1
	}
	return 2
}

// handleJoin adds a learner to a class: a sandbox of their own, the class's
// walk started there on the class's step, and their token.
func (a *App) handleJoin(w http.ResponseWriter, r *http.Request) {
	code := normCode(r.PostFormValue("code"))
	j := web.Join{Code: code, Name: r.PostFormValue("name")}
	if !sameOrigin(r) {
		a.pageError(w, r, flow.Errorf(flow.Invalid, "join from flowlab's own join page"))
		return
	}
	c, ok := a.joinable(w, r, j)
	if !ok {
		return
	}
	j.Known = true
	if key, m, ok := a.memberOf(r, code); ok {
		a.returnTo(w, r, key, m)
		return
	}
	name, err := checkName(j.Name)
	if err != nil {
		j.Message = flow.MessageOf(err) + "."
		a.joinForm(w, r, http.StatusBadRequest, j)
		return
	}
	wk, ok := a.walks[c.Walk]
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.NotFound, "class %s runs the walkthrough %q, which this flowlab does not have", code, c.Walk))
		return
	}
	l, err := a.newSandbox(w, r, true)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	session, err := a.startClassWalk(r.Context(), l, wk, c, c.Step)
	if err != nil {
		a.teardown(context.WithoutCancel(r.Context()), l, "its class walkthrough could not start")
		a.pageError(w, r, err)
		return
	}
	token := make([]byte, 32)
	rand.Read(token) // never fails (crypto/rand)
	cookie := base64.RawURLEncoding.EncodeToString(token)
	key := tokenKey(cookie)
	m, err := a.learners.Join(key, progressdb.Member{Class: code, Name: name, Lab: l.lab.ID, Place: placeOf(session.State())})
	if err != nil {
		a.teardown(context.WithoutCancel(r.Context()), l, "its learner could not join")
		a.pageError(w, r, err)
		return
	}
	a.classes.setLab(l.lab.ID, key)
	http.SetCookie(w, &http.Cookie{Name: classCookie, Value: cookie, Path: "/",
		HttpOnly: true, SameSite: http.SameSiteLaxMode, Secure: r.TLS != nil})
	learner(w, r)
	a.log.Info("learner joined", "class", code, "lab", l.lab.ID, "seq", m.Seq)
	http.Redirect(w, r, "/labs/"+l.lab.ID+"/"+wk.Pattern+"?walk="+url.QueryEscape(wk.ID), http.StatusSeeOther)
}

// returnTo sends a returning learner to their sandbox, rebuilt on the step
// they were on if it no longer runs.
func (a *App) returnTo(w http.ResponseWriter, r *http.Request, key string, m progressdb.Member) {
	c, ok, err := a.learners.Class(m.Class)
	if err == nil && !ok {
		err = flow.Errorf(flow.NotFound, "your class %s has ended", m.Class)
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	wk, ok := a.walks[c.Walk]
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.NotFound, "class %s runs the walkthrough %q, which this flowlab does not have", c.Code, c.Walk))
		return
	}
	// One rebuild at a time per learner: two tabs make one sandbox.
	mu := a.classes.rebuildLock(key)
	mu.Lock()
	defer mu.Unlock()
	if m2, ok, err := a.learners.Member(key); err == nil && ok {
		m = m2
	}
	if l, ok := a.lab(m.Lab); ok {
		if lw := l.currentWalk(); lw != nil && l.mayChange(r) {
			http.Redirect(w, r, "/labs/"+l.lab.ID+"/"+lw.walk.Pattern+"?walk="+url.QueryEscape(lw.walk.ID), http.StatusSeeOther)
			return
		}
	}
	step := 0
	if m.Walk == c.Walk {
		step = min(m.Step, len(wk.Steps)-1)
	}
	l, err := a.newSandbox(w, r, true)
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	session, err := a.startClassWalk(r.Context(), l, wk, c, step)
	if err != nil {
		a.teardown(context.WithoutCancel(r.Context()), l, "its class walkthrough could not start")
		a.pageError(w, r, err)
		return
	}
	err = a.learners.UpdateMember(key, func(m *progressdb.Member) {
		m.Lab = l.lab.ID
		if m.Walk != c.Walk {
			m.Place = placeOf(session.State())
		}
	})
	if err != nil {
		a.teardown(context.WithoutCancel(r.Context()), l, "its learner could not be recorded")
		a.pageError(w, r, err)
		return
	}
	a.classes.setLab(l.lab.ID, key)
	learner(w, r)
	a.log.Info("learner's sandbox rebuilt", "class", c.Code, "lab", l.lab.ID, "step", step)
	http.Redirect(w, r, "/labs/"+l.lab.ID+"/"+wk.Pattern+"?walk="+url.QueryEscape(wk.ID), http.StatusSeeOther)
}

// startWalk starts wk in sandbox l, as "Start" of a walkthrough does: its
// scenario woken and reset, the walk's setup run.
func (a *App) startWalk(ctx context.Context, l *labRun, wk *walk.Walk) (*walk.Session, error) {
	s, ok := l.scenario(wk.Pattern)
	if !ok { // Load checked the pattern against the default lab's, and every lab has the same
		return nil, flow.Errorf(flow.Internal, "lab %s has no %s", l.lab.ID, wk.Pattern)
	}
	if err := a.wake(l, s, true); err != nil {
		return nil, err
	}
	session, err := walk.Start(ctx, wk, walkLab{a: a, lab: l, s: s})
	if err != nil {
		return nil, err
	}
	l.setWalk(&labWalk{walk: wk, session: session, limit: rate.NewLimiter(walkActionRate, walkActionBurst)})
	return session, nil
}

// startClassWalk starts the class's walk in a learner's sandbox, moved to
// step, held by the class's lock and pause.
func (a *App) startClassWalk(ctx context.Context, l *labRun, wk *walk.Walk, c progressdb.Class, step int) (*walk.Session, error) {
	session, err := a.startWalk(ctx, l, wk)
	if err != nil {
		return nil, err
	}
	if step > 0 {
		if err := session.Move(step); err != nil {
			return nil, err
		}
	}
	session.Lock(c.Lock)
	if c.Paused {
		for _, f := range a.pauseLab(ctx, l) {
			return nil, f
		}
	}
	return session, nil
}

// placeOf is what the board keeps of a learner's walk state.
func placeOf(st walk.SessionState) progressdb.Place {
	p := progressdb.Place{Walk: st.Walk, Step: st.Step, Since: st.Since, Done: []int{}, Passed: []int{}, Assisted: []int{},
		Answers: map[string]string{}}
	for i, s := range st.Steps {
		if s.Done {
			p.Done = append(p.Done, i)
		}
		if s.Kind == walk.KindCheck && s.Status == "passed" {
			p.Passed = append(p.Passed, i)
		}
		if s.Assisted {
			p.Assisted = append(p.Assisted, i)
		}
		if s.Answer != "" {
			p.Answers[strconv.Itoa(i)] = s.Answer
		}
		if s.Outcome != "" {
			if p.Outcomes == nil {
				p.Outcomes = map[string]string{}
			}
			p.Outcomes[strconv.Itoa(i)] = s.Outcome
		}
		if s.Status == "not-yet" {
			p.Failed = &progressdb.Failed{Step: i, Title: s.Title, Hint: s.Hint}
		}
	}
	return p
}

// mergePlace is live, a learner's sandbox's walk now, with what kept
// (their place as last recorded) holds of the same walk: a sandbox rebuilt
// after a restart starts its session afresh, but what the learner did
// before still counts.
func mergePlace(kept, live progressdb.Place) progressdb.Place {
	if kept.Walk != live.Walk {
		return live
	}
	union := func(a, b []int) []int {
		out := slices.Clone(b)
		for _, x := range a {
			if !slices.Contains(out, x) {
				out = append(out, x)
			}
		}
		slices.Sort(out)
		return out
	}
	live.Done, live.Passed = union(kept.Done, live.Done), union(kept.Passed, live.Passed)
	// Assisted only while no pass of the learner's own: a check passed
	// live without help is no longer assisted.
	for _, x := range kept.Assisted {
		if !slices.Contains(live.Assisted, x) && !slices.Contains(live.Passed, x) {
			live.Assisted = append(live.Assisted, x)
		}
	}
	slices.Sort(live.Assisted)
	for k, v := range kept.Answers {
		if _, ok := live.Answers[k]; !ok {
			live.Answers[k] = v
		}
	}
	for k, v := range kept.Outcomes {
		if _, ok := live.Outcomes[k]; !ok {
			if live.Outcomes == nil {
				live.Outcomes = map[string]string{}
			}
			live.Outcomes[k] = v
		}
	}
	return live
}

// classInfo is what a class member's walk JSON says of their class.
type classInfo struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Paused bool   `json:"paused"`
	Lock   int    `json:"lock"`
}

// classWalkState is a learner's walk JSON with their class, if any.
type classWalkState struct {
	walk.SessionState
	Class *classInfo `json:"class,omitempty"`
}

// classOfLab is the class of sandbox l's learner, with what their walk
// state shows kept as their place; nil for a lab of no class member.
func (a *App) classOfLab(l *labRun, st walk.SessionState) *classInfo {
	key, ok := a.classes.memberOfLab(l.lab.ID)
	if !ok {
		return nil
	}
	m, ok, err := a.learners.Member(key)
	if err != nil || !ok || m.Lab != l.lab.ID {
		return nil
	}
	c, ok, err := a.learners.Class(m.Class)
	if err != nil || !ok {
		return nil
	}
	if st.Walk == c.Walk {
		if err := a.learners.UpdateMember(key, func(m *progressdb.Member) { m.Place = mergePlace(m.Place, placeOf(st)) }); err != nil {
			a.log.Error("record a class member's place", "class", c.Code, "err", err)
		}
	}
	return &classInfo{Code: c.Code, Name: m.Name, Paused: c.Paused, Lock: c.Lock}
}

// joinURL is the address learners open to join class code: the host the
// instructor used, unless it is a loopback name, which no other machine
// reaches; then this machine's first LAN IPv4 address.
func (a *App) joinURL(r *http.Request, code string) string {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host = r.Host
		_, port, _ = net.SplitHostPort(a.web.Addr().String())
	}
	lower := strings.ToLower(strings.TrimSuffix(host, "."))
	ip, perr := netip.ParseAddr(strings.Trim(host, "[]"))
	if lower == "localhost" || strings.HasSuffix(lower, ".localhost") || (perr == nil && ip.IsLoopback()) {
		if lan := lanIPv4(); lan != "" {
			host = lan
		}
	}
	return "http://" + net.JoinHostPort(strings.Trim(host, "[]"), port) + "/join/" + code
}

// lanIPv4 is this machine's first non-loopback IPv4 address, "" if none.
func lanIPv4() string {
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return ""
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if ip4 := n.IP.To4(); ip4 != nil && !ip4.IsLoopback() && !ip4.IsLinkLocalUnicast() {
				return ip4.String()
			}
		}
	}
	return ""
}
