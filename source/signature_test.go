package source

import (
	"net/http"
	"testing"
	"time"

	"github.com/causeway/causeway/config"
)

// TestSignStandardVerifies signs a call as a sender would and checks it the way a webhook
// source does; a changed body no longer verifies.
func TestSignStandardVerifies(t *testing.T) {
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	sig := &Signature{Scheme: "standard", Secret: config.NewSecret(secret), Tolerance: 5 * time.Minute}
	h := http.Header{}
	body := []byte(`{"id":"C-001"}`)
	if err := SignStandard(h, secret, "msg_1", time.Now(), body); err != nil {
		t.Fatal(err)
	}
	if id, err := verify(sig, h, body, time.Now()); err != nil || id != "msg_1" {
		t.Errorf("verify: %q %v", id, err)
	}
	if _, err := verify(sig, h, []byte(`{"id":"C-002"}`), time.Now()); err == nil {
		t.Error("a changed body verified")
	}
	if err := SignStandard(h, "not-a-secret!", "msg_2", time.Now(), body); err == nil {
		t.Error("a malformed secret signed")
	}
}
