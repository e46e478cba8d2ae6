package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// TestHTTPHygiene: only this machine's names and configured ones reach the
// lab (a DNS-rebinding page does not), a known path with another method
// answers 405, /static/ serves files but no listings, and an idle
// keep-alive connection is closed.
func TestHTTPHygiene(t *testing.T) {
	s := MustStart(t, "-hosts", "Classroom.LAN")
	port := s.URL[strings.LastIndex(s.URL, ":"):]
	request := func(method, path, host string) (*http.Response, string) {
		t.Helper()
		req, err := http.NewRequest(method, s.URL+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp, string(body)
	}
	ws := func(host, origin string) (*websocket.Conn, *http.Response, error) {
		h := http.Header{"Host": {host}, "Origin": {origin}}
		return websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(s.URL, "http")+s.base+"/request-response/ws", h)
	}

	t.Run("hosts", func(t *testing.T) {
		for _, host := range []string{"evil.example:8080", "evil.example", "localhost.evil.example" + port, "10.9.8.7" + port} {
			resp, body := request("GET", s.base+"/request-response", host)
			if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "-hosts") {
				t.Errorf("Host %s: %d %q; want 421 saying how to allow a name", host, resp.StatusCode, body)
			}
		}
		_, resp, err := ws("evil.example:8080", "http://evil.example:8080")
		if err == nil || resp == nil || resp.StatusCode != http.StatusMisdirectedRequest {
			t.Errorf("websocket from a rebound name: %v, %v; want 421", err, resp)
		}
		for _, host := range []string{"localhost" + port, "LOCALHOST" + port, "127.0.0.1" + port, "[::1]" + port, "classroom.lan" + port, "app.localhost" + port} {
			if resp, _ := request("GET", "/healthz", host); resp.StatusCode != http.StatusOK {
				t.Errorf("Host %s: %d, want 200", host, resp.StatusCode)
			}
		}
		conn, _, err := ws("classroom.lan"+port, "http://classroom.lan"+port)
		if err != nil {
			t.Fatalf("websocket on a configured name: %v", err)
		}
		conn.Close()
		// A page on another allowed name is still another site.
		if _, resp, err := ws("localhost"+port, "http://classroom.lan"+port); err == nil || resp.StatusCode != http.StatusForbidden {
			t.Errorf("websocket with another origin: %v, %v; want 403", err, resp)
		}
	})

	t.Run("methods", func(t *testing.T) {
		for _, c := range []struct{ method, path string }{
			{"POST", "/healthz"}, {"DELETE", s.base + "/request-response"}, {"PUT", "/static/app.js"}, {"POST", s.base + "/request-response/ws"},
		} {
			resp, _ := request(c.method, c.path, "")
			if resp.StatusCode != http.StatusMethodNotAllowed || !strings.Contains(resp.Header.Get("Allow"), "GET") {
				t.Errorf("%s %s: %d, Allow %q; want 405 allowing GET", c.method, c.path, resp.StatusCode, resp.Header.Get("Allow"))
			}
		}
		if resp, body := request("GET", "/no/such/page", ""); resp.StatusCode != http.StatusNotFound || !strings.Contains(body, "no page at") {
			t.Errorf("GET of an unknown path: %d %q; want the 404 page", resp.StatusCode, body)
		}
	})

	t.Run("static", func(t *testing.T) {
		for _, path := range []string{"/static/", "/static/vendor/", "/static/vendor", "/static/vendor/uplot/"} {
			if resp, body := request("GET", path, ""); resp.StatusCode != http.StatusNotFound || strings.Contains(body, "app.js") || strings.Contains(body, "uplot") {
				t.Errorf("GET %s: %d %q; want 404 and no listing", path, resp.StatusCode, body)
			}
		}
		if resp, _ := request("GET", "/static/vendor/uplot/uPlot.esm.js", ""); resp.StatusCode != http.StatusOK {
			t.Errorf("a vendored file: %d", resp.StatusCode)
		}
	})

	t.Run("idle", func(t *testing.T) {
		conn, err := net.Dial("tcp", strings.TrimPrefix(s.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
		br := bufio.NewReader(conn)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		conn.SetReadDeadline(time.Now().Add(idleTimeout + 5*time.Second))
		if _, err := br.ReadByte(); err != io.EOF {
			t.Fatalf("an idle keep-alive connection: %v; want it closed by the server", err)
		}
	})
}
