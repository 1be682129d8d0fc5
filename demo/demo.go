// Package demo runs causeway demo: a node with the definitions of examples/demo, and two
// small systems it starts itself — a CRM with an HTTP API that calls a webhook when a
// customer changes, and an ERP that is only a SQLite database — with orders and customer
// changes moving between them through sources, the bus and flows.
package demo

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/causeway/causeway/bus"
	demodefs "github.com/causeway/causeway/examples/demo"
	"github.com/causeway/causeway/kinds"
	"github.com/causeway/causeway/platform"
)

// Options configure a demo.
type Options struct {
	// HTTPAddr and AdminAddr are the node's listeners.
	HTTPAddr, AdminAddr string
	// DataDir keeps the node's data, the ERP's database and the definitions; empty for a
	// temporary directory removed at the end.
	DataDir string
	// Every is the pace: an ERP order at each tick, a CRM change at every other.
	Every time.Duration
	// For ends the demo after this long; 0 runs until ctx ends.
	For time.Duration
	// Out receives the demo's story; Logger the node's logs.
	Out    io.Writer
	Logger *slog.Logger
}

// secretName is the webhook secret's name in the definitions.
const secretName = "DEMO_CRM_WEBHOOK_SECRET"

// Run runs the demo until ctx ends or opts.For passes. It fails when, by then, nothing
// made it from one system to the other.
func Run(ctx context.Context, opts Options) (err error) {
	if opts.Every <= 0 {
		opts.Every = 2 * time.Second
	}
	if opts.DataDir == "" {
		dir, err := os.MkdirTemp("", "causeway-demo-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		opts.DataDir = dir
	}
	defs, secrets := filepath.Join(opts.DataDir, "definitions"), filepath.Join(opts.DataDir, "secrets")
	if err := writeDefinitions(defs); err != nil {
		return err
	}
	secret, err := webhookSecret(secrets)
	if err != nil {
		return err
	}
	crm, err := NewCRM()
	if err != nil {
		return fmt.Errorf("demo crm: %w", err)
	}
	defer crm.Close()
	erpPath := filepath.Join(opts.DataDir, "erp.db")
	erp, err := OpenERP(erpPath)
	if err != nil {
		return err
	}
	defer erp.Close()
	// The definitions read these, with defaults for causeway validate.
	os.Setenv("CAUSEWAY_DEMO_CRM_URL", crm.URL())
	os.Setenv("CAUSEWAY_DEMO_ERP_DSN", erpPath)
	defer os.Unsetenv("CAUSEWAY_DEMO_CRM_URL")
	defer os.Unsetenv("CAUSEWAY_DEMO_ERP_DSN")

	p, err := platform.New(ctx, platform.Options{
		ConfigDir: defs, SecretsDir: secrets, DataDir: filepath.Join(opts.DataDir, "node"), Registry: kinds.Default(),
		HTTPAddr: opts.HTTPAddr, AdminAddr: opts.AdminAddr, Node: "demo", Logger: opts.Logger,
		Sync: bus.Sync{Always: true}, DedupWindow: 2 * time.Minute, Retention: 24 * time.Hour,
		MaxBatchBytes: 10 << 20, MaxBatchItems: 1000, FlowAckWait: 30 * time.Second,
	})
	if err != nil {
		return err
	}
	p.Start()
	defer func() { err = errors.Join(err, p.Shutdown()) }()

	out := opts.Out
	fmt.Fprintf(out, `Causeway demo

  ingestion and webhooks   http://%[1]s
  management API, metrics  http://%[2]s   (causeway runs list --admin %[2]s)
  the CRM, an HTTP API     %[3]s/notes
  the ERP, a database      %[4]s
  the definitions          %[5]s

Every %[6]s a new order appears in the ERP's orders table. The source erp-orders reads it
(sqlPoll) and puts erp.order.created on the bus; the flow order-to-crm reads the customer
from the CRM and adds a note to their timeline. Every other time a customer changes in the
CRM, which calls the signed webhook of the source crm-customers; the flow customer-to-erp
writes the customer into the ERP's database.

Look up a message:  curl -s http://%[2]s/v1/messages/erp-order-1
Stop with Ctrl-C.

`, p.HTTPAddr(), p.AdminAddr(), crm.URL(), erpPath, defs, opts.Every)

	var stop <-chan time.Time
	if opts.For > 0 {
		stop = time.After(opts.For)
	}
	tick := time.NewTicker(opts.Every)
	defer tick.Stop()
	hook := "http://" + p.HTTPAddr() + "/hooks/crm/customers"
	report := func() {
		same, all := crm.InStep(erp.Tiers(ctx))
		fmt.Fprintf(out, "%s  ERP orders %d → CRM notes %d   ·   CRM changes %d → ERP customers in step %d/%d\n",
			time.Now().Format("15:04:05"), erp.Orders(), crm.Notes(), crm.Changes(), same, all)
	}
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			report()
			return nil
		case <-stop:
			report()
			if crm.Notes() == 0 || len(erp.Tiers(ctx)) == 0 {
				return errors.New("demo: nothing reached the other system; see the node's log")
			}
			fmt.Fprintf(out, "last CRM note: %s\n", crm.LastNote())
			return nil
		case <-tick.C:
		}
		if err := erp.EnterOrder(ctx, n); err != nil {
			fmt.Fprintf(out, "the ERP could not take an order: %v\n", err)
		}
		if n%2 == 1 {
			if err := crm.Change(ctx, n/2, hook, secret); err != nil {
				fmt.Fprintf(out, "the CRM could not tell the webhook: %v\n", err)
			}
		}
		if n%5 == 4 {
			report()
		}
	}
}

// writeDefinitions copies the embedded definitions to dir.
func writeDefinitions(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return fs.WalkDir(demodefs.Files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := demodefs.Files.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, path), data, 0o644)
	})
}

// webhookSecret makes the CRM's webhook secret and writes it where the node reads secrets.
func webhookSecret(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	key := make([]byte, 24)
	if _, err := rand.Read(key); err != nil {
		return "", err
	}
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	return secret, os.WriteFile(filepath.Join(dir, secretName), []byte(secret), 0o600)
}
