package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"

	"github.com/gorilla/websocket"

	"flowlab/flow"
	"flowlab/web"
)

// statusOf is the one table from error kinds to HTTP statuses.
var statusOf = map[flow.ErrorKind]int{
	flow.Invalid:     http.StatusBadRequest,
	flow.NotFound:    http.StatusNotFound,
	flow.Forbidden:   http.StatusForbidden,
	flow.Unavailable: http.StatusServiceUnavailable,
	flow.Internal:    http.StatusInternalServerError,
}

// handleHome is the way in: the article's claims and flaws, each linked to
// the page of the default lab that shows it, and the walkthroughs with how
// far this learner got in each. A first visit makes the browser a learner.
func (a *App) handleHome(w http.ResponseWriter, r *http.Request) {
	l, ok := a.lab(a.home)
	if !ok {
		a.pageError(w, r, flow.Errorf(flow.Unavailable, "the lab %q is not open", a.home))
		return
	}
	titles := map[string]string{}
	var order []string
	for _, s := range l.scenarios {
		titles[s.Name()] = s.Title()
		order = append(order, s.Name())
	}
	start := web.NewStart(l.lab.ID, titles, order)
	start.Walks = web.GroupWalks(a.startWalks(learner(w, r)), titles, order)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := web.StartPage(start).Render(r.Context(), w); err != nil {
		a.log.Error("render start page", "err", err)
	}
}

func (a *App) handlePage(w http.ResponseWriter, r *http.Request) {
	l, s, err := a.find(r)
	var show *web.Lesson
	var walking *web.WalkPanel
	var pr presenting
	if err == nil {
		pr, err = presentingOf(r)
	}
	if err == nil {
		// Checked before the scenario wakes: a bad link changes nothing.
		show, err = showOf(r, s.Name())
	}
	if err == nil {
		walking, err = a.walkOf(r, l, s.Name())
	}
	if err == nil {
		err = a.wake(l, s, true)
	}
	if err != nil {
		a.pageError(w, r, err)
		return
	}
	page := web.Page{
		Lab:      l.lab.ID,
		Sandbox:  l.sandbox,
		Watching: !l.mayChange(r),
		Scenario: s.Name(),
		Broker:   s.broker,
		Title:    s.Title(),
		Summary:  s.Summary(),
		Knobs:    s.Knobs(),
		Presets:  s.Presets(),
		Brokers:  brokerViews(a.brokers.States()),
		Show:     show,
		Walk:     walking,
		Walks:    a.walkLinks(s.Name()),
	}
	page.Present = web.Present{On: pr.On, Off: pr.Off, Spotlight: pr.Spotlight}
	page.Shortcuts = web.ShortcutsFor(s.Name(), page.Knobs)
	// A spotlight is read-only for anyone: the class watches a learner's lab.
	page.Watching = page.Watching || pr.Spotlight != ""
	for _, o := range l.scenarios {
		// A tab names the pattern; the page's heading also names the broker.
		short, _, _ := strings.Cut(o.Title(), " (")
		page.Tabs = append(page.Tabs, web.Tab{Title: short, Href: "/labs/" + l.lab.ID + "/" + o.Name(), Current: o == s})
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := web.ScenarioPage(page).Render(r.Context(), w); err != nil {
		a.log.Error("render page", "err", err)
	}
}

// showOf is the lesson a page is asked to show by ?show=, nil when none.
// The parameter is taken once and only with a value the page knows.
func showOf(r *http.Request, scenario string) (*web.Lesson, error) {
	values, ok := r.URL.Query()["show"]
	if !ok {
		return nil, nil
	}
	if len(values) != 1 {
		return nil, flow.Errorf(flow.Invalid, "show is given %d times: give it once", len(values))
	}
	l, err := web.LessonFor(scenario, values[0])
	if err != nil {
		return nil, err
	}
	return &l, nil
}

func brokerViews(states []brokerState) []web.Broker {
	out := make([]web.Broker, len(states))
	for i, b := range states {
		out[i] = web.Broker{Name: b.Name, OK: b.OK, Starting: b.Starting, Where: b.Where, Status: b.Status}
	}
	return out
}

// upgrader refuses a websocket from a foreign Origin: its default CheckOrigin
// accepts only an Origin whose host and port are the request's own, which
// ownHostsOnly has already checked.
var upgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 16384}

func (a *App) handleSocket(w http.ResponseWriter, r *http.Request) {
	l, s, err := a.find(r)
	if err == nil {
		err = a.wake(l, s, true)
	}
	if err != nil {
		a.jsonError(w, err)
		return
	}
	// Whether this connection may change the lab is settled once, here,
	// where its cookie is: a watcher's commands are all refused.
	may := l.mayChange(r)
	conn, err := upgrader.Upgrade(w, r, nil) // answers 403 itself for a foreign Origin
	if err != nil {
		return
	}
	s.hub.Serve(conn, func(msg []byte) any { return s.handle(msg, may) })
}

func (a *App) handleTrace(w http.ResponseWriter, r *http.Request) {
	l, _, err := a.find(r)
	if err != nil {
		a.jsonError(w, err)
		return
	}
	id := r.PathValue("id")
	hops, ok := l.lab.Traces.Get(id)
	if !ok {
		a.jsonError(w, flow.Errorf(flow.NotFound, "no recent message %q: only the most recent hops are kept", id))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": id, "hops": hops})
}

// handleHealth reports each part. It answers 503 only when a part that must
// work does not: the web server itself or Kafka. RabbitMQ is reported but
// optional, and product-service being down is a lesson, not a fault.
func (a *App) handleHealth(w http.ResponseWriter, r *http.Request) {
	browsers := 0
	labs := a.allLabs()
	for _, l := range labs {
		for _, s := range l.scenarios {
			browsers += s.hub.Clients()
		}
	}
	parts := map[string]any{
		"web":  map[string]any{"ok": true, "status": "serving", "browsers": browsers},
		"labs": map[string]any{"ok": true, "open": len(labs), "max": a.cfg.MaxLabs, "running_scenarios": a.runs.Load()},
	}
	status := http.StatusOK
	for _, b := range a.brokers.States() {
		parts[strings.ToLower(b.Name)] = b
		if b.Name == "Kafka" && !b.OK {
			status = http.StatusServiceUnavailable
		}
	}
	if l, ok := a.lab(a.home); ok {
		if s, ok := l.scenario("request-response"); ok {
			st := s.Stats().Nodes["product-service"]
			parts["product-service"] = map[string]any{"ok": st.State != "down", "status": st.State}
		}
	}
	word := "ok"
	if status != http.StatusOK {
		word = "degraded"
	}
	writeJSON(w, status, map[string]any{"status": word, "parts": parts})
}

func (a *App) handleNotFound(w http.ResponseWriter, r *http.Request) {
	a.pageError(w, r, flow.Errorf(flow.NotFound, "there is no page at %s", r.URL.Path))
}

// find resolves the lab and scenario named in the URL.
func (a *App) find(r *http.Request) (*labRun, *scenarioRun, error) {
	l, ok := a.lab(r.PathValue("lab"))
	if !ok && a.tornDown(r.PathValue("lab")) {
		return nil, nil, a.goneError()
	}
	if !ok {
		return nil, nil, flow.Errorf(flow.NotFound, "there is no lab %q", r.PathValue("lab"))
	}
	s, ok := l.scenario(r.PathValue("scenario"))
	if !ok {
		return nil, nil, flow.Errorf(flow.NotFound, "lab %q has no scenario %q", l.lab.ID, r.PathValue("scenario"))
	}
	return l, s, nil
}

func (a *App) pageError(w http.ResponseWriter, r *http.Request, err error) {
	a.logInternal(err)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(statusOf[flow.KindOf(err)])
	web.ErrorPage(flow.MessageOf(err)).Render(r.Context(), w)
}

func (a *App) jsonError(w http.ResponseWriter, err error) {
	a.logInternal(err)
	writeJSON(w, statusOf[flow.KindOf(err)], map[string]string{"error": flow.MessageOf(err), "kind": string(flow.KindOf(err))})
}

func (a *App) logInternal(err error) {
	var fe *flow.Error
	if !errors.As(err, &fe) || fe.Kind == flow.Internal {
		a.log.Error("internal error", "err", err)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// ownHostsOnly refuses a request whose Host is not localhost, one of this
// machine's names or addresses, or a name given in -hosts. A page elsewhere
// could otherwise point its own name at this machine (DNS rebinding) and
// drive the lab from a learner's browser.
func (a *App) ownHostsOnly(h http.Handler) http.Handler {
	names := map[string]bool{"localhost": true}
	if n, err := os.Hostname(); err == nil {
		names[strings.ToLower(n)] = true
	}
	for _, n := range a.cfg.Hosts {
		names[n] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host := r.Host
		if h, _, err := net.SplitHostPort(host); err == nil {
			host = h
		}
		host = strings.TrimSuffix(strings.ToLower(host), ".")
		if !names[host] && !strings.HasSuffix(host, ".localhost") && !ownAddress(host) {
			http.Error(w, fmt.Sprintf("flowlab does not answer to the name %q: open it as localhost or by this machine's address, "+
				"or start flowlab with -hosts %s (or FLOWLAB_HOSTS) to allow that name", host, host), http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// ownAddress says whether host is an IP address of this machine. The
// interfaces are asked each time, as a laptop's address may change.
func ownAddress(host string) bool {
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return false
	}
	ip = ip.WithZone("").Unmap()
	if ip.IsLoopback() {
		return true
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if own, ok := netip.AddrFromSlice(n.IP); ok && own.Unmap() == ip {
				return true
			}
		}
	}
	return false
}

// noCache makes a browser revalidate the embedded files, so a new build is
// never hidden behind a stale cache in a classroom.
func noCache(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-cache")
		h.ServeHTTP(w, r)
	})
}
