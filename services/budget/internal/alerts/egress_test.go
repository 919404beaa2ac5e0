package alerts

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"
)

func TestIsPublic(t *testing.T) {
	tests := map[string]bool{
		"8.8.8.8":                  true,
		"2606:4700:4700::1111":     true,
		"127.0.0.1":                false,
		"::1":                      false,
		"::ffff:127.0.0.1":         false,
		"10.1.2.3":                 false,
		"172.16.0.1":               false,
		"192.168.1.1":              false,
		"169.254.169.254":          false, // cloud metadata
		"fe80::1":                  false,
		"fd00::1":                  false,
		"100.64.0.1":               false,
		"0.0.0.0":                  false,
		"255.255.255.255":          false,
		"224.0.0.1":                false,
		"64:ff9b::a00:1":           false, // NAT64 of 10.0.0.1
		"::ffff:169.254.169.254":   false,
		"2001:db8::1":              false,
		"198.18.0.1":               false,
		"::":                       false,
		"203.0.113.9":              false,
		"1.1.1.1":                  true,
		"::ffff:1.1.1.1":           true,
		"2a00:1450:4001:81b::200e": true,
	}
	for s, want := range tests {
		if got := IsPublic(netip.MustParseAddr(s)); got != want {
			t.Errorf("IsPublic(%s) = %v, want %v", s, got, want)
		}
	}
}

func TestCheckWebhookHost(t *testing.T) {
	for host, refused := range map[string]bool{
		"hooks.example.com": false,
		"8.8.8.8":           false,
		"localhost":         true,
		"LocalHost.":        true,
		"api.localhost":     true,
		"127.0.0.1":         true,
		"[::1]":             true,
		"::1":               true,
		"169.254.169.254":   true,
		"10.0.0.7":          true,
	} {
		err := CheckWebhookHost(host)
		if got := errors.Is(err, ErrPrivateAddress); got != refused {
			t.Errorf("CheckWebhookHost(%q) = %v, want refused %v", host, err, refused)
		}
	}
}

// The client refuses at connect time, so a name or a redirect that leads
// to loopback never reaches the server.
func TestWebhookClientRefusesLoopback(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
	}))
	defer srv.Close()

	_, err := NewWebhookClient(time.Second, false).Post(srv.URL, "application/json", nil)
	if !errors.Is(err, ErrPrivateAddress) {
		t.Errorf("post to %s: %v, want ErrPrivateAddress", srv.URL, err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("server saw %d calls, want 0", n)
	}

	// "localhost" resolves to loopback: refused too, after resolution.
	local := "http://localhost:" + srv.URL[len("http://127.0.0.1:"):]
	if _, err := NewWebhookClient(time.Second, false).Get(local); !errors.Is(err,
		ErrPrivateAddress) {
		t.Errorf("get %s: %v, want ErrPrivateAddress", local, err)
	}

	resp, err := NewWebhookClient(time.Second, true).Post(srv.URL, "application/json", nil)
	if err != nil {
		t.Fatalf("with private addresses allowed: %v", err)
	}
	resp.Body.Close()
	if n := calls.Load(); n != 1 {
		t.Errorf("server saw %d calls, want 1", n)
	}
}
