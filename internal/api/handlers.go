package api

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/cutover/cutover/internal/deploy"
)

// serviceName returns the {name} path value, or a 404 error when it cannot
// be a service name (so hostile names never reach the backend).
func serviceName(r *http.Request) (string, error) {
	name := r.PathValue("name")
	if !validServiceName(name) {
		return "", errorf(http.StatusNotFound, CodeUnknownService, fmt.Sprintf("unknown service %q", name))
	}
	return name, nil
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// metrics serves the backend's Gatherer in the Prometheus text format, or
// in OpenMetrics when the scraper's Accept header asks for it.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	s.metricsH.ServeHTTP(w, r)
	return nil
}

func (s *Server) listServices(w http.ResponseWriter, r *http.Request) error {
	names := s.b.Services()
	out := make([]deploy.Status, 0, len(names))
	for _, name := range names {
		st, err := s.b.Status(name)
		if err != nil {
			return fmt.Errorf("status of service %s: %w", name, err)
		}
		out = append(out, st)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) error {
	name, err := serviceName(r)
	if err != nil {
		return err
	}
	st, err := s.b.Status(name)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

func (s *Server) deploy(w http.ResponseWriter, r *http.Request) error {
	name, err := serviceName(r)
	if err != nil {
		return err
	}
	var req DeployRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	if err := checkVersion(req.Version); err != nil {
		return err
	}
	if err := checkStrategy(req.Strategy); err != nil {
		return err
	}
	if err := deploy.ValidateEnv(req.Env); err != nil {
		return errorf(http.StatusBadRequest, CodeInvalid, strings.TrimPrefix(err.Error(), deploy.ErrInvalid.Error()+": "))
	}
	ctx := r.Context()
	if req.AllowDrift {
		ctx = WithAllowDrift(ctx)
	}
	d, err := s.b.Deploy(ctx, name, req.Version, req.Strategy, ActorUser, req.Env)
	if err != nil {
		return err
	}
	w.Header().Set("Location", "/v1/services/"+name+"/deployments/"+url.PathEscape(d.ID))
	writeJSON(w, http.StatusCreated, d)
	return nil
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) error {
	name, err := serviceName(r)
	if err != nil {
		return err
	}
	limit := 0
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return errorf(http.StatusBadRequest, CodeInvalid, fmt.Sprintf("limit %q: want a number >= 0", v))
		}
		limit = n
	}
	ds, err := s.b.History(name, limit)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []deploy.Deployment{}
	}
	writeJSON(w, http.StatusOK, ds)
	return nil
}

func (s *Server) deployment(w http.ResponseWriter, r *http.Request) error {
	name, err := serviceName(r)
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	d, found, err := s.b.Deployment(name, id)
	if err != nil {
		return err
	}
	if found {
		writeJSON(w, http.StatusOK, d)
		return nil
	}
	return errorf(http.StatusNotFound, CodeNotFound, fmt.Sprintf("service %s has no deployment %q", name, id))
}

// action adapts a Backend state change (promote, pause, ...) to a handler
// that answers with the service's status after the change.
func (s *Server) action(do func(Backend, context.Context, string) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, err := serviceName(r)
		if err != nil {
			return err
		}
		if err := do(s.b, r.Context(), name); err != nil {
			return err
		}
		st, err := s.b.Status(name)
		if err != nil {
			// The change happened; only the report of it failed.
			s.log.Warn("status after api action", "service", name, "path", r.URL.Path, "err", err)
			w.WriteHeader(http.StatusNoContent)
			return nil
		}
		writeJSON(w, http.StatusOK, st)
		return nil
	}
}

// instances adapts Register and Deregister.
func (s *Server) instances(do func(Backend, context.Context, string, string, string) error) func(http.ResponseWriter, *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		name, err := serviceName(r)
		if err != nil {
			return err
		}
		var req InstanceRequest
		if err := decodeBody(w, r, &req); err != nil {
			return err
		}
		if err := checkVersion(req.Version); err != nil {
			return err
		}
		if err := checkAddr(req.Addr); err != nil {
			return err
		}
		if err := do(s.b, r.Context(), name, req.Version, req.Addr); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

func (s *Server) reload(w http.ResponseWriter, r *http.Request) error {
	if err := s.b.Reload(r.Context()); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "reloaded"})
	return nil
}
