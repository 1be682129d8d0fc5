package mqttconn

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/eclipse/paho.golang/paho"

	"github.com/causeway/causeway/config"
	"github.com/causeway/causeway/internal/testutil"
	"github.com/causeway/causeway/system"
)

func mqttSystem(url string) *system.Spec {
	return &system.Spec{MQTT: &system.MQTT{URL: config.NewSecret(url)}, Operations: map[string]*system.Operation{
		"send": {MQTT: &system.MQTTOperation{Topic: "cw/test/${{ .params.line }}", QoS: 1}},
	}}
}

// TestPublishQoS1 publishes to the machine's Mosquitto and receives it with a subscriber.
func TestPublishQoS1(t *testing.T) {
	testutil.RequireService(t, "Mosquitto", "127.0.0.1:1883")
	conn, err := net.Dial("tcp", "127.0.0.1:1883")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan *paho.Publish, 4)
	sub := paho.NewClient(paho.ClientConfig{Conn: conn, OnPublishReceived: []func(paho.PublishReceived) (bool, error){
		func(p paho.PublishReceived) (bool, error) { got <- p.Packet; return true, nil },
	}})
	ctx := context.Background()
	if _, err := sub.Connect(ctx, &paho.Connect{ClientID: fmt.Sprint("cw-test-sub-", time.Now().UnixNano()), CleanStart: true, KeepAlive: 30}); err != nil {
		t.Fatal(err)
	}
	defer sub.Disconnect(&paho.Disconnect{})
	line := fmt.Sprint(time.Now().UnixNano())
	if _, err := sub.Subscribe(ctx, &paho.Subscribe{Subscriptions: []paho.SubscribeOptions{{Topic: "cw/test/" + line, QoS: 1}}}); err != nil {
		t.Fatal(err)
	}
	c := New("test")
	defer c.Close()
	res, err := c.Do(ctx, "plant", mqttSystem("mqtt://127.0.0.1:1883"), "send", map[string]any{"line": line, "body": map[string]any{"n": 1}})
	if err != nil || res.(map[string]any)["topic"] != "cw/test/"+line {
		t.Fatalf("publish: %v %v", res, err)
	}
	select {
	case p := <-got:
		if string(p.Payload) != `{"n":1}` || p.QoS != 1 {
			t.Errorf("received %s qos %d", p.Payload, p.QoS)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nothing received")
	}
	if detail, err := c.Check(ctx, "plant", mqttSystem("mqtt://127.0.0.1:1883")); err != nil || detail == "" {
		t.Errorf("check: %q %v", detail, err)
	}
}

func TestUnreachableBrokerIsTransient(t *testing.T) {
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := ln.Addr().String()
	ln.Close()
	_, err := New("test").Do(context.Background(), "plant", mqttSystem("mqtt://u:hunter2@"+addr), "send", map[string]any{"line": "x"})
	var me *Error
	if !errors.As(err, &me) || !me.Transient || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("unreachable: %v", err)
	}
}
