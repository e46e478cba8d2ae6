package main

import (
	"io/fs"
	"net/http"

	"flowlab/static"
)

// routes lists every route flowlab serves. Each names its method, so another
// method on a known path answers 405 with Allow; only names of this machine
// reach any of them.
func (a *App) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.handleHome)
	mux.HandleFunc("POST /labs", a.handleNewLab)
	mux.HandleFunc("GET /labs/{lab}/{scenario}", a.handlePage)
	mux.HandleFunc("GET /labs/{lab}/{scenario}/ws", a.handleSocket)
	mux.HandleFunc("POST /labs/{lab}/{scenario}/restart", a.handleRestart)
	mux.HandleFunc("POST /labs/{lab}/{scenario}/reset", a.handleReset)
	mux.HandleFunc("POST /labs/{lab}/reset", a.handleLabReset)
	mux.HandleFunc("POST /walks/{id}", a.handleNewWalk)
	mux.HandleFunc("GET /labs/{lab}/walk", a.handleWalk)
	mux.HandleFunc("POST /labs/{lab}/walk", a.handleWalkAction)
	mux.HandleFunc("GET /labs/{lab}/{scenario}/messages/{id}", a.handleTrace)
	mux.HandleFunc("GET /progress.json", a.handleProgress)
	mux.HandleFunc("GET /teach", a.handleTeach)
	mux.HandleFunc("POST /classes", a.handleNewClass)
	mux.HandleFunc("GET /classes/{code}/board", a.handleClassBoard)
	mux.HandleFunc("GET /classes/{code}/board.json", a.handleBoardJSON)
	mux.HandleFunc("GET /classes/{code}/board.csv", a.handleBoardCSV)
	mux.HandleFunc("GET /classes/{code}/qr.png", a.handleQR)
	mux.HandleFunc("POST /classes/{code}/pace", a.handlePace)
	mux.HandleFunc("GET /join", a.handleJoinForm)
	mux.HandleFunc("GET /join/{code}", a.handleJoinCode)
	mux.HandleFunc("POST /join", a.handleJoin)
	mux.HandleFunc("GET /healthz", a.handleHealth)
	mux.Handle("GET /static/", http.StripPrefix("/static/", noCache(http.FileServerFS(filesOnly{static.Files}))))
	// No icon: an empty answer spares every page a 404 in its console.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /", a.handleNotFound)
	return a.ownHostsOnly(mux)
}

// filesOnly serves files and refuses folders, so /static/ lists nothing.
type filesOnly struct{ fs.FS }

func (f filesOnly) Open(name string) (fs.File, error) {
	file, err := f.FS.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := file.Stat(); err != nil || st.IsDir() {
		file.Close()
		return nil, fs.ErrNotExist
	}
	return file, nil
}
