package docker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/docker/docker/api/types/registry"
)

// dockerConfigPath is the Docker client's config file:
// $DOCKER_CONFIG/config.json, or ~/.docker/config.json.
func dockerConfigPath() string {
	if dir := os.Getenv("DOCKER_CONFIG"); dir != "" {
		return filepath.Join(dir, "config.json")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".docker", "config.json")
}

// configFile is the part of config.json that holds credentials.
type configFile struct {
	Auths map[string]struct {
		Auth          string `json:"auth"`
		Username      string `json:"username"`
		Password      string `json:"password"`
		IdentityToken string `json:"identitytoken"`
	} `json:"auths"`
	CredsStore  string            `json:"credsStore"`
	CredHelpers map[string]string `json:"credHelpers"`
}

// dockerHubKeys are the names config.json may give Docker Hub's entry.
var dockerHubKeys = []string{"https://index.docker.io/v1/", "index.docker.io", "docker.io", "registry-1.docker.io"}

// registryAuth is the X-Registry-Auth value for reg, from config.json:
// "" when it has no credentials for reg (an anonymous pull).
func registryAuth(reg string) (string, error) {
	path := dockerConfigPath()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read credentials: %w", err)
	}
	var cf configFile
	if err := json.Unmarshal(b, &cf); err != nil {
		return "", fmt.Errorf("read credentials: %s: %w", path, err)
	}
	keys := []string{reg, "https://" + reg, "http://" + reg}
	if reg == "docker.io" {
		keys = dockerHubKeys
	}
	helper := cf.CredsStore
	for _, k := range keys {
		if h, ok := cf.CredHelpers[k]; ok {
			helper = h
		}
	}
	if helper != "" {
		ac, found, err := helperAuth(helper, keys[0])
		if err != nil {
			return "", err
		}
		if found {
			return registry.EncodeAuthConfig(ac)
		}
	}
	for _, k := range keys {
		e, ok := cf.Auths[k]
		if !ok {
			continue
		}
		ac := registry.AuthConfig{Username: e.Username, Password: e.Password, IdentityToken: e.IdentityToken, ServerAddress: reg}
		if e.Auth != "" {
			raw, err := base64.StdEncoding.DecodeString(e.Auth)
			if err != nil {
				return "", fmt.Errorf("read credentials: %s: auths.%s.auth is not base64", path, k)
			}
			user, pass, ok := strings.Cut(string(raw), ":")
			if !ok {
				return "", fmt.Errorf("read credentials: %s: auths.%s.auth is not user:password", path, k)
			}
			ac.Username, ac.Password = user, pass
		}
		return registry.EncodeAuthConfig(ac)
	}
	return "", nil
}

// helperAuth asks a Docker credential helper (docker-credential-NAME get)
// for server's credentials.
func helperAuth(name, server string) (registry.AuthConfig, bool, error) {
	cmd := exec.Command("docker-credential-"+name, "get")
	cmd.Stdin = strings.NewReader(server)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		if strings.Contains(out.String()+errOut.String(), "credentials not found") {
			return registry.AuthConfig{}, false, nil
		}
		return registry.AuthConfig{}, false, fmt.Errorf("credential helper docker-credential-%s: %w", name, err)
	}
	var r struct{ Username, Secret string }
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		return registry.AuthConfig{}, false, fmt.Errorf("credential helper docker-credential-%s: %w", name, err)
	}
	ac := registry.AuthConfig{Username: r.Username, Password: r.Secret, ServerAddress: server}
	if r.Username == "<token>" {
		ac = registry.AuthConfig{IdentityToken: r.Secret, ServerAddress: server}
	}
	return ac, true, nil
}
