package alerts

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrPrivateAddress means a webhook would reach an address that is not on
// the public internet: loopback, a private or link-local network (cloud
// metadata services live there), or a reserved range. Any admin key can
// set a webhook URL, so without this refusal a budget could make the
// service probe the network it runs in (server-side request forgery).
var ErrPrivateAddress = errors.New("address is not public")

// nonPublic lists the ranges refused beside those netip classifies
// (loopback, private, link-local, multicast, unspecified).
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: embeds any IPv4 address
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
}

// IsPublic reports whether a is an address a webhook may be sent to.
func IsPublic(a netip.Addr) bool {
	a = a.Unmap() // ::ffff:127.0.0.1 is 127.0.0.1
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() ||
		a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() || a.IsMulticast() ||
		a.IsUnspecified() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}

// CheckWebhookHost refuses a URL host that names a non-public address
// literally, or a name that only resolves locally. Other names are
// checked when the connection is made, since what they resolve to can
// change after the budget is written.
func CheckWebhookHost(host string) error {
	h := strings.TrimSuffix(strings.ToLower(host), ".")
	if h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return fmt.Errorf("%s: %w", host, ErrPrivateAddress)
	}
	a, err := netip.ParseAddr(strings.Trim(h, "[]"))
	if err != nil {
		return nil // a name
	}
	if !IsPublic(a) {
		return fmt.Errorf("%s: %w", host, ErrPrivateAddress)
	}
	return nil
}

// NewWebhookClient returns the HTTP client webhooks are posted with. When
// allowPrivate is false it refuses, at connect time, every address that
// is not public: names resolving to one, DNS answers that change after
// validation, and redirects to one are all caught where the socket is
// opened. It never uses a proxy, whose address would be the only one
// checked.
func NewWebhookClient(timeout time.Duration, allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		d.Control = refusePrivate
	}
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          20,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   timeout,
		ResponseHeaderTimeout: timeout,
	}
	return &http.Client{
		Transport: tr,
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("stopped after 3 redirects")
			}
			return nil
		},
	}
}

// refusePrivate is a net.Dialer Control hook: it runs with the address
// actually being connected to, after name resolution.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("webhook address %s: %w", address, err)
	}
	if !IsPublic(ap.Addr()) {
		return fmt.Errorf("webhook address %s: %w", address, ErrPrivateAddress)
	}
	return nil
}
