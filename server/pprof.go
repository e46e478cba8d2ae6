//go:build pprof

package main

import (
	"fmt"
	"net"
	"net/http"
	_ "net/http/pprof" // its handlers, on the listener below only
	"os"
)

// Built with -tags pprof (the sandbox benchmark does so), flowlab serves
// net/http/pprof on FLOWLAB_PPROF, e.g. 127.0.0.1:0, and says where on
// stderr. The default build has no such listener.
func init() {
	addr := os.Getenv("FLOWLAB_PPROF")
	if addr == "" {
		return
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowlab: FLOWLAB_PPROF:", err)
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "pprof on http://%s/debug/pprof/\n", ln.Addr())
	go http.Serve(ln, http.DefaultServeMux)
}
