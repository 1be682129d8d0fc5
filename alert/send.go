package alert

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/causeway/causeway/bus"
)

// maxSendAttempts bounds the tries of one notification; the waits between them grow to
// ten minutes, so a sink gets about a day and a half to come back.
const maxSendAttempts = 200

// sendDelay is the wait after the nth failed try.
func sendDelay(n uint64) time.Duration {
	d := time.Second << min(n, 10)
	return min(d, 10*time.Minute)
}

// startSender consumes NOTIFY: one durable consumer shared by the nodes.
func (m *Manager) startSender(ctx context.Context) error {
	cons, err := m.opts.Bus.JetStream().CreateOrUpdateConsumer(ctx, bus.StreamNotify, jetstream.ConsumerConfig{
		Durable: "notify", Description: "Causeway: sends alert notifications", AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: time.Minute, MaxAckPending: 64,
	})
	if err != nil {
		return fmt.Errorf("alert notifications: consumer: %w", err)
	}
	m.cc, err = cons.Consume(func(msg jetstream.Msg) {
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.deliver(ctx, msg)
		}()
	})
	return err
}

// deliver sends one notification, and settles it: sent, retried later, or dropped.
func (m *Manager) deliver(ctx context.Context, msg jetstream.Msg) {
	var n Notification
	if err := json.Unmarshal(msg.Data(), &n); err != nil {
		m.log.Error("unreadable alert notification; dropped", "err", err)
		_ = msg.Term()
		return
	}
	a, ok := m.alerts[n.Alert]
	if !ok || n.Sink < 0 || n.Sink >= len(a.Sinks) {
		m.log.Warn("alert notification for an alert or sink no longer defined; dropped", "alert", n.Alert, "sink", n.Sink)
		_ = msg.Term()
		return
	}
	sctx, cancel := context.WithTimeout(ctx, time.Minute)
	err := m.send(sctx, a.Sinks[n.Sink], &n)
	cancel()
	if ctx.Err() != nil {
		return // stopping: delivered again after the restart
	}
	if err == nil {
		_ = msg.Ack()
		m.sent.WithLabelValues(n.Alert, "sent").Inc()
		m.log.Info("alert sent", "alert", n.Alert, "sink", n.Sink, "state", n.State, "kind", n.Kind, "key", n.Key, "suppressed", n.Suppressed)
		return
	}
	md, _ := msg.Metadata()
	tries := uint64(1)
	if md != nil {
		tries = md.NumDelivered
	}
	if tries >= maxSendAttempts {
		m.sent.WithLabelValues(n.Alert, "dropped").Inc()
		m.log.Error("alert notification given up after repeated failures", "alert", n.Alert, "sink", n.Sink, "tries", tries, "err", err)
		_ = msg.Term()
		return
	}
	m.sent.WithLabelValues(n.Alert, "failed").Inc()
	m.log.Warn("alert notification failed; it is tried again", "alert", n.Alert, "sink", n.Sink, "tries", tries, "in", sendDelay(tries), "err", err)
	_ = msg.NakWithDelay(sendDelay(tries))
}

// send hands a notification to a sink.
func (m *Manager) send(ctx context.Context, sk *Sink, n *Notification) error {
	if sk.Email != nil {
		if m.opts.Email == nil {
			return fmt.Errorf("email sink: no email sender")
		}
		return m.opts.Email(ctx, sk.Email.System, sk.Email.Operation, params(n))
	}
	w := sk.Webhook
	body, err := webhookBody(w.Format, n)
	if err != nil {
		return err
	}
	timeout := w.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	rctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, w.URL.Reveal(), bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("webhook: the url does not make a request") // the URL is a secret: not in the error
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "Causeway-Alerts")
	req.Header.Set("Idempotency-Key", n.ID+"/"+fmt.Sprint(n.Sink))
	for k, v := range w.Headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		// The error of a failed request names the URL; say what failed without it.
		return fmt.Errorf("webhook: %s", redactURL(err.Error(), w.URL.Reveal()))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook: answered HTTP %d", resp.StatusCode)
	}
	return nil
}

// redactURL takes a secret URL out of an error message.
func redactURL(msg, url string) string {
	if url == "" {
		return msg
	}
	return strings.ReplaceAll(msg, url, "[webhook url]")
}

// params are a notification as an email operation's templates see it (.params).
func params(n *Notification) map[string]any {
	return map[string]any{"alert": n.Alert, "state": n.State, "kind": n.Kind, "severity": n.Severity, "key": n.Key,
		"system": n.System, "flow": n.Flow, "summary": n.Summary, "detail": n.Detail, "fingerprint": n.Fingerprint,
		"suppressed": n.Suppressed, "time": n.Time.Format(time.RFC3339), "title": title(n)}
}

// title is a notification's one-line headline.
func title(n *Notification) string {
	t := fmt.Sprintf("[%s] %s", strings.ToUpper(n.Severity), n.Summary)
	if n.State == "resolved" {
		t = "[RESOLVED] " + n.Summary
	}
	if n.Suppressed > 0 {
		t += fmt.Sprintf(" (+%d more since the last notice)", n.Suppressed)
	}
	return t
}

// webhookBody renders a notification in a webhook format.
func webhookBody(format string, n *Notification) ([]byte, error) {
	switch format {
	case "slack":
		text := title(n)
		if n.Detail != "" {
			text += "\n" + n.Detail
		}
		return json.Marshal(map[string]any{"text": text})
	case "teams":
		color := "D70000"
		if n.State == "resolved" {
			color = "2EB886"
		} else if n.Severity != "high" {
			color = "F2A900"
		}
		facts := []map[string]string{{"name": "Kind", "value": n.Kind}, {"name": "Severity", "value": n.Severity}, {"name": "State", "value": n.State}}
		if n.System != "" {
			facts = append(facts, map[string]string{"name": "System", "value": n.System})
		}
		if n.Flow != "" {
			facts = append(facts, map[string]string{"name": "Flow", "value": n.Flow})
		}
		return json.Marshal(map[string]any{
			"@type": "MessageCard", "@context": "https://schema.org/extensions", "summary": title(n), "themeColor": color,
			"title": title(n), "sections": []any{map[string]any{"text": n.Detail, "facts": facts}},
		})
	}
	return json.Marshal(n)
}
