package paging

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestSize(t *testing.T) {
	for _, c := range []struct {
		in   int32
		want int
	}{{0, DefaultSize}, {7, 7}, {500, 500}, {501, 500}} {
		if got, err := Size(c.in, 500); err != nil || got != c.want {
			t.Errorf("Size(%d) = %d, %v; want %d", c.in, got, err, c.want)
		}
	}
	if _, err := Size(-1, 500); err == nil {
		t.Error("Size(-1) accepted a negative size")
	}
}

func TestTokenRoundTripAndRefusals(t *testing.T) {
	tok := Encode("v1", "tenant-a/keys", "k_9", "2026")
	pos, ok := Decode(tok, "v1", "tenant-a/keys", 2)
	if diff := cmp.Diff([]string{"k_9", "2026"}, pos); !ok || diff != "" {
		t.Fatalf("Decode ok=%v (-want +got):\n%s", ok, diff)
	}
	if pos, ok := Decode("", "v1", "tenant-a/keys", 2); !ok || pos != nil {
		t.Errorf("empty token = %v, %v; want nil, true", pos, ok)
	}
	refused := map[string][3]any{
		"other listing": {tok, "v1", "tenant-b/keys"},
		"other kind":    {tok, "k1", "tenant-a/keys"},
		"not base64":    {"%%%", "v1", "tenant-a/keys"},
	}
	for name, c := range refused {
		if _, ok := Decode(c[0].(string), c[1].(string), c[2].(string), 2); ok {
			t.Errorf("%s: token accepted", name)
		}
	}
	if _, ok := Decode(tok, "v1", "tenant-a/keys", 1); ok {
		t.Error("token with two position parts accepted as one")
	}
}

func TestCut(t *testing.T) {
	next := func(s string) string { return "after-" + s }
	items, tok := Cut([]string{"a", "b", "c"}, 2, next)
	if diff := cmp.Diff([]string{"a", "b"}, items); diff != "" || tok != "after-b" {
		t.Errorf("Cut = %v, %q (-want +got items):\n%s", items, tok, diff)
	}
	if items, tok := Cut([]string{"a"}, 2, next); len(items) != 1 || tok != "" {
		t.Errorf("last page = %v, %q; want one item and no token", items, tok)
	}
}
