package testsupport

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// Registry is an image registry a test runs on 127.0.0.1, speaking the
// part of the registry HTTP API v2 a Docker Engine pulls with (the
// version check, manifests, blobs), optionally behind basic
// authentication. Engines treat loopback registries as insecure, so they
// reach it over plain HTTP. Blobs are sent in small chunks with short
// pauses, so that a pull reports progress more than once.
type Registry struct {
	// Addr is host:port, the registry part of image references.
	Addr       string
	user, pass string
	srv        *httptest.Server
	mu         sync.Mutex
	manifests  map[string][]byte // name:tag -> manifest
	blobs      map[string][]byte // digest -> content
}

// StartRegistry starts a registry for the test; with a user it answers
// only requests that carry that user's password.
func StartRegistry(t testing.TB, user, pass string) *Registry {
	t.Helper()
	r := &Registry{user: user, pass: pass, manifests: map[string][]byte{}, blobs: map[string][]byte{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	r.Addr = strings.TrimPrefix(r.srv.URL, "http://")
	t.Cleanup(r.srv.Close)
	return r
}

func digest(b []byte) string {
	sum := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// PushApp stores an image name:tag made of one layer holding the static
// test application (see package dockerapp) as /app, its entry point.
func (r *Registry) PushApp(name, tag string) error {
	bin, err := dockerApp()
	if err != nil {
		return err
	}
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	tw.WriteHeader(&tar.Header{Name: "app", Mode: 0o755, Size: int64(len(bin)), ModTime: time.Unix(0, 0)})
	tw.Write(bin)
	tw.Close()
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw.Bytes())
	zw.Close()
	layer := gz.Bytes()
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64", "os": "linux",
		"config": map[string]any{"Entrypoint": []string{"/app"}},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{digest(raw.Bytes())}},
	})
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.docker.distribution.manifest.v2+json",
		"config":        map[string]any{"mediaType": "application/vnd.docker.container.image.v1+json", "size": len(config), "digest": digest(config)},
		"layers": []map[string]any{{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
			"size": len(layer), "digest": digest(layer)}},
	})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[digest(layer)] = layer
	r.blobs[digest(config)] = config
	r.manifests[name+":"+tag] = manifest
	r.blobs[digest(manifest)] = manifest
	return nil
}

func (r *Registry) serve(w http.ResponseWriter, req *http.Request) {
	if r.user != "" {
		if u, p, ok := req.BasicAuth(); !ok || u != r.user || p != r.pass {
			w.Header().Set("WWW-Authenticate", `Basic realm="cutover test registry"`)
			registryError(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
	}
	path := req.URL.Path
	if path == "/v2/" || path == "/v2" {
		w.Header().Set("Docker-Distribution-API-Version", "registry/2.0")
		w.Write([]byte("{}"))
		return
	}
	rest, ok := strings.CutPrefix(path, "/v2/")
	if !ok {
		http.NotFound(w, req)
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if i := strings.LastIndex(rest, "/manifests/"); i >= 0 {
		name, ref := rest[:i], rest[i+len("/manifests/"):]
		m, ok := r.manifests[name+":"+ref]
		if !ok {
			m, ok = r.blobs[ref]
		}
		if !ok {
			registryError(w, http.StatusNotFound, "MANIFEST_UNKNOWN", "manifest unknown")
			return
		}
		w.Header().Set("Content-Type", "application/vnd.docker.distribution.manifest.v2+json")
		w.Header().Set("Docker-Content-Digest", digest(m))
		w.Header().Set("Content-Length", fmt.Sprint(len(m)))
		if req.Method != http.MethodHead {
			w.Write(m)
		}
		return
	}
	if i := strings.LastIndex(rest, "/blobs/"); i >= 0 {
		b, ok := r.blobs[rest[i+len("/blobs/"):]]
		if !ok {
			registryError(w, http.StatusNotFound, "BLOB_UNKNOWN", "blob unknown")
			return
		}
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Docker-Content-Digest", digest(b))
		w.Header().Set("Content-Length", fmt.Sprint(len(b)))
		if req.Method == http.MethodHead {
			return
		}
		const chunk = 256 << 10
		for len(b) > 0 {
			n := min(chunk, len(b))
			w.Write(b[:n])
			w.(http.Flusher).Flush()
			b = b[n:]
			time.Sleep(30 * time.Millisecond)
		}
		return
	}
	http.NotFound(w, req)
}

func registryError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"code": code, "message": msg}}})
}
