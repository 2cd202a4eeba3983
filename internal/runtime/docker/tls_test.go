package docker

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cutover/cutover/internal/route"
	"github.com/cutover/cutover/internal/runtime"
	"github.com/cutover/cutover/internal/testsupport"
)

// A tcp:// host with --tlsverify is reached with the client certificate
// of DOCKER_CERT_PATH, as the docker CLI reaches it; without
// DOCKER_TLS_VERIFY and the certificates, it is unreachable.
func TestTCPHostWithTLS(t *testing.T) {
	dir := t.TempDir()
	writeTLS(t, dir)
	eng := testsupport.StartDockerd(t, testsupport.DockerdOptions{TCP: true, Bridge: true,
		TLSCA: filepath.Join(dir, "ca.pem"), TLSCert: filepath.Join(dir, "server-cert.pem"), TLSKey: filepath.Join(dir, "server-key.pem")})
	ctx := context.Background()
	if err := testsupport.BuildImage(ctx, eng.Host, "app:v1", ""); err != nil {
		t.Fatal(err)
	}
	t.Setenv("DOCKER_CERT_PATH", "")
	t.Setenv("DOCKER_TLS_VERIFY", "")
	plain, _, _ := newDriver(t, func(o *Options) { o.Instances = 1; o.Hosts = []string{eng.TCPHost} })
	if _, err := plain.Start(ctx, route.Blue, runtime.Release{Version: "v1"}); err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Errorf("without client certificates: %v, want the host unreachable", err)
	}
	t.Setenv("DOCKER_CERT_PATH", dir)
	t.Setenv("DOCKER_TLS_VERIFY", "1")
	d, _, _ := newDriver(t, func(o *Options) { o.Service = "tls"; o.Instances = 1; o.Hosts = []string{eng.TCPHost} })
	ins, err := d.Start(ctx, route.Blue, runtime.Release{Version: "v1"})
	if err != nil {
		t.Fatalf("with DOCKER_CERT_PATH: %v", err)
	}
	if got := get(t, "http://"+ins[0].Addr+"/"); got != "v1 blue tls-blue-1" {
		t.Errorf("container answers %q", got)
	}
	d.Stop(ctx, route.Blue)
}

// writeTLS writes a CA, a server certificate for 127.0.0.1 and a client
// certificate under the names the Docker client expects in
// DOCKER_CERT_PATH (ca.pem, cert.pem, key.pem).
func writeTLS(t *testing.T, dir string) {
	t.Helper()
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	write := func(name, typ string, der []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	caKey := key()
	ca := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cutover test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write("ca.pem", "CERTIFICATE", caDER)
	for i, c := range []struct {
		cert, key string
		usage     x509.ExtKeyUsage
	}{{"server-cert.pem", "server-key.pem", x509.ExtKeyUsageServerAuth}, {"cert.pem", "key.pem", x509.ExtKeyUsageClientAuth}} {
		k := key()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: c.cert},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{c.usage},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		write(c.cert, "CERTIFICATE", der)
		kder, _ := x509.MarshalECPrivateKey(k)
		write(c.key, "EC PRIVATE KEY", kder)
	}
}
