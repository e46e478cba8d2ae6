package main

import (
	"net/http"

	"flowlab/static"
)

// routes lists every route flowlab serves.
func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.handleHome)
	mux.HandleFunc("GET /labs/{lab}/{scenario}", a.handlePage)
	mux.HandleFunc("GET /labs/{lab}/{scenario}/ws", a.handleSocket)
	mux.HandleFunc("GET /labs/{lab}/{scenario}/messages/{id}", a.handleTrace)
	mux.HandleFunc("GET /healthz", a.handleHealth)
	mux.Handle("GET /static/", http.StripPrefix("/static/", noCache(http.FileServerFS(static.Files))))
	mux.HandleFunc("/", a.handleNotFound)
	return mux
}
