// Package platform assembles a running Causeway node: it loads the definitions, opens the
// bus and the tracking store, starts the indexer, and serves the http listener (ingestion,
// later gateway APIs and webhooks) and the admin listener (management API, metrics).
package platform

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/causeway/causeway/alert"
	"github.com/causeway/causeway/bus"
	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/connector"
	"github.com/causeway/causeway/flow"
	"github.com/causeway/causeway/gateway"
	"github.com/causeway/causeway/gateway/requests"
	"github.com/causeway/causeway/ingest"
	"github.com/causeway/causeway/reliability"
	"github.com/causeway/causeway/source"
	"github.com/causeway/causeway/store"
	"github.com/causeway/causeway/system/status"
	"github.com/causeway/causeway/tracking"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/valyala/fasthttp"
)

// Options configures a node. The zero values of the optional fields are sane defaults.
type Options struct {
	// ConfigDir holds the definitions; DataDir the bus storage and the tracking index.
	ConfigDir, DataDir string
	// Env and SecretsDir are passed to the definition loader.
	Env, SecretsDir string
	// Registry lists the resource kinds the loader knows.
	Registry *config.Registry
	// HTTPAddr and AdminAddr are the listen addresses (":8080", "127.0.0.1:8081").
	HTTPAddr, AdminAddr string
	// NATSURL selects an external bus; NATSListen gives the embedded one a client port.
	NATSURL, NATSListen string
	// Sync is the embedded bus's fsync policy (zero: always).
	Sync bus.Sync
	// GroupCommit chooses whether accepted messages are published in atomic batches.
	GroupCommit bus.GroupCommit
	// Replicas is the stream replica count on an external cluster.
	Replicas int
	// DedupWindow and Retention tune the MESSAGES stream.
	DedupWindow, Retention time.Duration
	// MaxMessageBytes, MaxBatchBytes and MaxBatchItems bound ingestion.
	MaxMessageBytes, MaxBatchBytes int64
	MaxBatchItems                  int
	// Node names this node; the host name by default.
	Node string
	// ShutdownTimeout bounds how long in-flight requests may take to finish on shutdown.
	ShutdownTimeout time.Duration
	// HTTPServer is the engine of the http listener: EngineLean (the default) or
	// EngineStandard.
	HTTPServer string
	// NoFastLane serves every gateway and ingestion request on the general path, also on the lean
	// engine, which otherwise serves simple proxy routes on the fast lane (ADR 0013).
	NoFastLane bool
	// FlowAckWait is how long a flow's trigger delivery may go without a sign of life
	// before the bus delivers it again (default 30s).
	FlowAckWait time.Duration
	// Logger receives the node's logs.
	Logger *slog.Logger
}

// Platform is a running node.
type Platform struct {
	opts    Options
	log     *slog.Logger
	cfg     *config.Config
	bus     *bus.Bus
	store   *store.SQLite
	indexer *tracking.Indexer
	flows   *flow.Engine
	// status holds the systems' statuses.
	status *status.Registry
	// alerts raises and sends alerts.
	alerts *alert.Manager
	poller *source.Poller
	// consumers consume the queues of amqp sources.
	consumers *source.Consumers
	// watchers pick up the files of file sources.
	watchers *source.Watchers
	// subscribers hold the subscriptions of mqtt and nats sources.
	subscribers *source.Subscribers
	// schedulers tick the schedule sources.
	schedulers *source.Schedulers
	// gateway serves the APIs.
	gateway *gateway.Gateway
	// requests keeps the gateway's asynchronous requests; nil without APIs.
	requests *requests.Store
	// revocations follows the keys revoked at run time; nil without APIs.
	revocations *gateway.Revocations
	// conns are the connector clients flows and sources share.
	conns *connector.Set
	reg   *prometheus.Registry
	// stopPruning ends the hourly pruning of the tracking index.
	stopPruning context.CancelFunc

	httpLn, adminLn net.Listener
	httpSrv         server
	adminSrv        server
	ready           atomic.Bool
	serveErr        chan error
}

// New loads the definitions and starts everything except the listeners' serving loops, which
// Start begins. On error, whatever was started is stopped again.
func New(ctx context.Context, opts Options) (_ *Platform, err error) {
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Node == "" {
		opts.Node, _ = os.Hostname()
	}
	if opts.ShutdownTimeout <= 0 {
		opts.ShutdownTimeout = 30 * time.Second
	}
	if opts.HTTPAddr == "" {
		opts.HTTPAddr = ":8080"
	}
	if opts.AdminAddr == "" {
		opts.AdminAddr = "127.0.0.1:8081"
	}
	if opts.MaxMessageBytes <= 0 {
		opts.MaxMessageBytes = 1 << 20
	}
	p := &Platform{opts: opts, log: opts.Logger, reg: prometheus.NewRegistry(), serveErr: make(chan error, 2)}
	defer func() {
		if err != nil {
			p.close()
		}
	}()
	p.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	p.cfg, err = config.Load(opts.ConfigDir, config.Options{Registry: opts.Registry, Env: opts.Env, SecretsDir: opts.SecretsDir})
	if err != nil {
		return nil, fmt.Errorf("definitions in %s:\n%w", opts.ConfigDir, err)
	}
	cat := newCatalog(p.cfg)
	if opts.DataDir == "" {
		return nil, errors.New("a data directory is required (--data)")
	}
	p.bus, err = bus.Open(ctx, bus.Options{
		DataDir: opts.DataDir, URL: opts.NATSURL, Listen: opts.NATSListen, Sync: opts.Sync,
		Replicas: opts.Replicas, DedupWindow: opts.DedupWindow, MaxAge: opts.Retention,
		MaxMessageBytes: int(opts.MaxMessageBytes), NodeName: opts.Node, GroupCommit: opts.GroupCommit,
	}, p.log)
	if err != nil {
		return nil, err
	}
	p.reg.MustRegister(bus.NewCollector(p.bus))
	p.store, err = store.OpenSQLite(filepath.Join(opts.DataDir, "tracking.db"))
	if err != nil {
		return nil, err
	}
	if p.store.Migrated > 0 {
		p.log.Info("tracking index moved to the layout in acceptance order (ADR 0017)", "messages", p.store.Migrated)
	}
	p.indexer = tracking.NewIndexer(p.bus.JetStream(), p.store, p.log, tracking.NewMetrics(p.reg)).ReadWith(p.bus)
	if err := p.indexer.Start(ctx); err != nil {
		return nil, err
	}
	p.reg.MustRegister(tracking.NewLagCollector(p.indexer))
	retention := opts.Retention
	if retention <= 0 {
		retention = 7 * 24 * time.Hour
	}
	pruneCtx, stopPruning := context.WithCancel(context.Background())
	p.stopPruning = stopPruning
	go tracking.PruneEvery(pruneCtx, p.store, retention, time.Hour, p.log)

	p.conns = connector.New(connector.Options{Node: opts.Node, Registerer: p.reg})
	p.status, err = status.Open(ctx, status.Options{Bus: p.bus, Systems: systemsOf(p.cfg), Probe: p.probe,
		OnChange: p.statusChanged, Node: opts.Node, Logger: p.log, Registerer: p.reg})
	if err != nil {
		return nil, err
	}
	p.flows, err = flow.NewEngine(ctx, flow.Options{
		Bus: p.bus, Config: p.cfg, Check: checkFunc(cat), Node: opts.Node, AckWait: opts.FlowAckWait, Connectors: p.conns,
		Status: p.status, OnDeadLetter: p.deadLettered, Logger: p.log, Registerer: p.reg,
	})
	if err != nil {
		return nil, err
	}

	ing := ingest.New(cat, p.bus, ingest.Options{
		MaxMessageBytes: p.bus.MaxMessageBytes(), MaxBatchBytes: opts.MaxBatchBytes, MaxBatchItems: opts.MaxBatchItems, Node: opts.Node,
	}, p.log, ingest.NewMetrics(p.reg))
	admin, err := newAdmin(ctx, p, checkFunc(cat))
	if err != nil {
		return nil, err
	}
	systems := systemsOf(p.cfg)
	p.alerts, err = alert.Open(ctx, alert.Options{Bus: p.bus, Config: p.cfg, Status: p.status, Parked: p.flows.OldestParked,
		Errors: admin.errq, Node: opts.Node, Logger: p.log, Registerer: p.reg,
		Email: func(ctx context.Context, name, op string, params map[string]any) error {
			spec, ok := systems[name]
			if !ok {
				return fmt.Errorf("no System %q", name)
			}
			_, err := p.conns.Call(ctx, name, spec, op, params, connector.CallInfo{})
			return err
		}})
	if err != nil {
		return nil, err
	}
	srcOpts := source.Options{Bus: p.bus, Check: checkFunc(cat), Node: opts.Node, Logger: p.log, Registerer: p.reg, Metrics: source.NewMetrics(p.reg), Connectors: p.conns}
	hooks := source.NewHandler(p.cfg, srcOpts)
	p.poller = source.NewPoller(p.cfg, srcOpts)
	p.consumers = source.NewConsumers(p.cfg, srcOpts)
	p.watchers = source.NewWatchers(p.cfg, srcOpts)
	p.subscribers = source.NewSubscribers(p.cfg, srcOpts)
	p.schedulers = source.NewSchedulers(p.cfg, srcOpts)
	if p.gateway, err = p.newGateway(ctx, hooks.Paths()); err != nil {
		return nil, err
	}
	switch opts.HTTPServer {
	case "", EngineLean:
		var fast func(*fasthttp.RequestCtx) bool
		if !opts.NoFastLane {
			// Ingestion's own path is one exact method and path, which no API can take.
			fast = func(c *fasthttp.RequestCtx) bool { return ing.ServeFast(c) || p.gateway.ServeFast(c) }
		}
		p.httpSrv = newLeanServer(p.httpRoutes(ing, hooks, p.gateway), fast, p.log, p.maxBody(), readHeaderTimeout)
	case EngineStandard:
		p.httpSrv = newServer(p.httpRoutes(ing, hooks, p.gateway), p.log)
	default:
		return nil, fmt.Errorf("--http-server %q: use lean or standard", opts.HTTPServer)
	}
	p.adminSrv = newServer(admin.routes(), p.log)
	if p.httpLn, err = net.Listen("tcp", opts.HTTPAddr); err != nil {
		return nil, fmt.Errorf("http listener: %w", err)
	}
	if p.adminLn, err = net.Listen("tcp", opts.AdminAddr); err != nil {
		return nil, fmt.Errorf("admin listener: %w", err)
	}
	return p, nil
}

// HTTPAddr is the address the http listener is bound to.
func (p *Platform) HTTPAddr() string { return p.httpLn.Addr().String() }

// AdminAddr is the address the admin listener is bound to.
func (p *Platform) AdminAddr() string { return p.adminLn.Addr().String() }

// Bus returns the node's bus.
func (p *Platform) Bus() *bus.Bus { return p.bus }

// Config returns the loaded definitions.
func (p *Platform) Config() *config.Config { return p.cfg }

// Start serves both listeners in the background and marks the node ready.
func (p *Platform) Start() {
	for _, s := range []struct {
		srv server
		ln  net.Listener
	}{{p.httpSrv, p.httpLn}, {p.adminSrv, p.adminLn}} {
		go func() {
			if err := s.srv.Serve(s.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				p.serveErr <- err
			}
		}()
	}
	// Flows and sources start before the node says it is ready: a flow's consumer must
	// exist before a client that waited for readiness sends the first message.
	if err := p.status.Start(); err != nil {
		p.serveErr <- err
		return
	}
	if err := p.alerts.Start(); err != nil {
		p.serveErr <- err
		return
	}
	if err := p.flows.Start(context.Background()); err != nil {
		p.serveErr <- err
		return
	}
	if err := p.poller.Start(); err != nil {
		p.serveErr <- err
		return
	}
	if err := p.schedulers.Start(); err != nil {
		p.serveErr <- err
		return
	}
	p.consumers.Start()
	p.watchers.Start()
	p.startRequests()
	// A plain NATS subscription gets only what is sent once it exists: wait for it (a
	// while) before saying ready.
	p.subscribers.Start(10 * time.Second)
	p.ready.Store(true)
	p.log.Info("causeway ready", "http", p.HTTPAddr(), "admin", p.AdminAddr(), "node", p.opts.Node,
		"resources", len(p.cfg.All()), "sync", p.opts.Sync.String())
}

// Wait blocks until ctx ends or a listener fails.
func (p *Platform) Wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return nil
	case err := <-p.serveErr:
		return err
	}
}

// Shutdown stops taking requests, lets in-flight ones finish (within ShutdownTimeout), and
// then stops the indexer, the bus and the store in that order.
func (p *Platform) Shutdown() error {
	p.ready.Store(false)
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
	defer cancel()
	var errs []error
	for _, s := range []server{p.httpSrv, p.adminSrv} {
		if s != nil {
			if err := s.Shutdown(ctx); err != nil {
				errs = append(errs, err)
			}
		}
	}
	p.stopSources()
	if p.gateway != nil {
		p.gateway.Close(ctx)
	}
	if p.requests != nil {
		// Queued runs in progress are cut short and run again later (at least once).
		p.requests.Close()
	}
	if p.flows != nil {
		// Runs in progress get what is left of the shutdown time; the rest resume from
		// their journals when their triggers are delivered again.
		grace := time.Until(deadlineOf(ctx))
		p.flows.Stop(max(grace, 0))
	}
	p.close()
	p.log.Info("causeway stopped")
	return errors.Join(errs...)
}

// stopSources ends every source's reading; what a source had read but not stored, its
// system sends or offers again.
func (p *Platform) stopSources() {
	if p.poller != nil {
		p.poller.Stop()
	}
	if p.consumers != nil {
		p.consumers.Stop()
	}
	if p.watchers != nil {
		p.watchers.Stop()
	}
	if p.subscribers != nil {
		p.subscribers.Stop()
	}
	if p.schedulers != nil {
		p.schedulers.Stop()
	}
}

// close releases everything New opened, in reverse order; it is safe on a partial start.
func (p *Platform) close() {
	p.stopSources()
	for _, ln := range []net.Listener{p.httpLn, p.adminLn} {
		if ln != nil {
			_ = ln.Close()
		}
	}
	if p.requests != nil {
		p.requests.Close()
	}
	if p.revocations != nil {
		p.revocations.Close()
		p.revocations = nil
	}
	if p.flows != nil {
		p.flows.Stop(0)
	}
	if p.alerts != nil {
		p.alerts.Stop()
	}
	if p.status != nil {
		p.status.Stop()
	}
	if p.conns != nil {
		p.conns.Close()
	}
	if p.stopPruning != nil {
		p.stopPruning()
	}
	if p.indexer != nil {
		p.indexer.Stop()
	}
	if p.bus != nil {
		p.bus.Close()
	}
	if p.store != nil {
		_ = p.store.Close()
	}
	if p.cfg != nil {
		p.cfg.Cleanup()
	}
}

// deadlineOf is ctx's deadline, or now when it has none.
func deadlineOf(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now()
}

// Run starts a node and serves until ctx ends, then shuts it down.
func Run(ctx context.Context, opts Options) error {
	p, err := New(ctx, opts)
	if err != nil {
		return err
	}
	p.Start()
	werr := p.Wait(ctx)
	return errors.Join(werr, p.Shutdown())
}

// deadLettered raises the alert of a delivery that went to the errors queue.
func (p *Platform) deadLettered(e *reliability.Entry) {
	if p.alerts != nil {
		p.alerts.DeadLettered(e)
	}
}
