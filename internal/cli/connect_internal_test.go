package cli

import "testing"

// A wildcard listen address is where the daemon listens on every
// interface, loopback included: the client dials loopback.
func TestClientURL(t *testing.T) {
	for _, tt := range []struct{ listen, want string }{
		{"127.0.0.1:7070", "http://127.0.0.1:7070"},
		{"0.0.0.0:7070", "http://127.0.0.1:7070"},
		{":7070", "http://127.0.0.1:7070"},
		{"[::]:7070", "http://[::1]:7070"},
		{"[::1]:9000", "http://[::1]:9000"},
		{"localhost:7070", "http://localhost:7070"},
		{"10.0.0.5:7070", "http://10.0.0.5:7070"},
	} {
		got, err := clientURL(tt.listen)
		if err != nil || got != tt.want {
			t.Errorf("clientURL(%q) = %q, %v; want %q", tt.listen, got, err, tt.want)
		}
	}
	if _, err := clientURL("7070"); err == nil {
		t.Error("clientURL(7070) accepted an address without a host:port")
	}
}
