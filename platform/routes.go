package platform

import (
	"context"
	"net/http"
	"time"

	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/problem"
	"github.com/causeway/causeway/source"
)

// httpRoutes is the public listener: ingestion, the sources' webhooks, the gateway's APIs
// and health.
func (p *Platform) httpRoutes(ingest http.Handler, hooks *source.Handler, gw *gateway.Gateway) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST /v1/messages", ingest)
	hooks.Register(mux)
	gw.Register(mux)
	mux.HandleFunc("GET "+gateway.StatusPath+"{id}", gw.ServeStatus)
	mux.HandleFunc("GET /v1/usage", gw.ServeUsage)
	p.health(mux)
	mux.HandleFunc("/", problem.NotFound)
	return mux
}

// health adds /healthz (the process is alive) and /readyz (the node can take work: bus
// connected with JetStream answering, definitions loaded, listeners serving).
func (p *Platform) health(mux *http.ServeMux) {
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if !p.ready.Load() {
			problem.Write(w, r, http.StatusServiceUnavailable, "not-ready", "the node is starting or stopping")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := p.bus.Ready(ctx); err != nil {
			problem.Write(w, r, http.StatusServiceUnavailable, "not-ready", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
}
