package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A certificate rotated by `cutover reload`, then by rewriting its files
// alone, under a client loop that makes a new TLS connection (a full
// handshake) per request: no handshake fails, and the newest certificate
// is served afterwards.
func TestReloadRotatesCertificateWithoutAFailedHandshake(t *testing.T) {
	e := newEnv(t)
	dir := t.TempDir()
	cert, key := filepath.Join(e.dir, "cert.pem"), filepath.Join(e.dir, "key.pem")
	writeTestCert(t, cert, key, 1)
	e.editConfig("    instances: 2\n", "    instances: 2\n    tls: {cert: "+cert+", key: "+key+"}\n")
	e.start()
	e.mustCLI(0, "deploy", "web", "v1", "--wait")

	var (
		mu      sync.Mutex
		serials = map[int64]int{}
		ok      atomic.Int64
		failed  atomic.Int64
		lastErr atomic.Value
		stop    = make(chan struct{})
		wg      sync.WaitGroup
	)
	for range 3 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				case <-time.After(10 * time.Millisecond):
				}
				serial, err := handshake(e.public)
				if err != nil {
					failed.Add(1)
					lastErr.Store(err.Error())
					continue
				}
				ok.Add(1)
				mu.Lock()
				serials[serial]++
				mu.Unlock()
			}
		})
	}
	waitSerial := func(serial int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			mu.Lock()
			n := serials[serial]
			mu.Unlock()
			if n >= 20 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("certificate %d not served within 10s: %v", serial, serials)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitSerial(1)
	// A renewal job writes the new pair beside the old one and renames it
	// into place; the reload makes the router take it at once.
	rotate := func(serial int64) {
		t.Helper()
		nc, nk := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		writeTestCert(t, nc, nk, serial)
		for _, m := range [][2]string{{nk, key}, {nc, cert}} {
			if err := os.Rename(m[0], m[1]); err != nil {
				t.Fatal(err)
			}
		}
	}
	rotate(2)
	e.mustCLI(0, "reload")
	waitSerial(2)
	// Without a reload, the daemon notices the files changed (it checks
	// every 2s) and serves the new pair.
	rotate(3)
	waitSerial(3)
	close(stop)
	wg.Wait()
	t.Logf("certificate rotated by reload, then on file change: %d handshakes, %d failed; serials served %v",
		ok.Load()+failed.Load(), failed.Load(), serials)
	if n := failed.Load(); n != 0 {
		t.Errorf("%d TLS handshakes or requests failed across the rotation (last: %v)", n, lastErr.Load())
	}
	// After the rotation only the new certificate is served.
	for range 5 {
		if s, err := handshake(e.public); err != nil || s != 3 {
			t.Errorf("after the rotations got serial %d (%v), want 3", s, err)
		}
	}
}

// handshake opens a TLS connection to addr, sends one request and returns
// the serial number of the certificate the server presented.
func handshake(addr string) (int64, error) {
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: web\r\nConnection: close\r\n\r\n")); err != nil {
		return 0, err
	}
	buf := make([]byte, 12)
	if _, err := c.Read(buf); err != nil {
		return 0, err
	}
	if string(buf[:12]) != "HTTP/1.1 200" {
		return 0, &net.AddrError{Err: "answer " + string(buf), Addr: addr}
	}
	return c.ConnectionState().PeerCertificates[0].SerialNumber.Int64(), nil
}

// writeTestCert writes a self-signed certificate for 127.0.0.1 with the
// given serial, and its key.
func writeTestCert(t *testing.T, certPath, keyPath string, serial int64) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "cutover e2e"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
}
