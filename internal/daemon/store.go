package daemon

import (
	"encoding/json"
	"fmt"

	"github.com/cutover/cutover/internal/deploy"
	"github.com/cutover/cutover/internal/runtime/static"
	"github.com/cutover/cutover/internal/store"
)

// stateStore adapts the generic bbolt store to the controller's Store
// interface: the controller owns the schema of what it saves, the store
// owns durability.
type stateStore struct{ s *store.Store }

var _ deploy.Store = stateStore{}

func (a stateStore) SaveState(service string, st *deploy.State) error {
	return a.s.PutState(service, st)
}

func (a stateStore) LoadState(service string) (*deploy.State, bool, error) {
	var st deploy.State
	found, err := a.s.GetState(service, &st)
	if err != nil || !found {
		return nil, found, err
	}
	return &st, true, nil
}

func (a stateStore) SaveDeployment(dep *deploy.Deployment) error {
	return a.s.PutDeployment(dep.Service, dep.ID, dep)
}

func (a stateStore) Deployments(service string, limit int) ([]deploy.Deployment, error) {
	var out []deploy.Deployment
	err := a.s.Deployments(service, limit, func(raw []byte) error {
		var dep deploy.Deployment
		if err := json.Unmarshal(raw, &dep); err != nil {
			return fmt.Errorf("history of %s: %w", service, err)
		}
		out = append(out, dep)
		return nil
	})
	return out, err
}

// registrationStore adapts the bbolt store to the static runtime's Store:
// the driver owns the format, the store keeps it in the state bucket under
// "<service>/static-addresses", a key no controller state can have since
// service names cannot contain '/'.
type registrationStore struct{ s *store.Store }

var _ static.Store = registrationStore{}

func registrationsKey(service string) string { return service + "/static-addresses" }

func (a registrationStore) LoadRegistrations(service string) ([]byte, bool, error) {
	var raw json.RawMessage
	found, err := a.s.GetState(registrationsKey(service), &raw)
	return raw, found, err
}

func (a registrationStore) SaveRegistrations(service string, raw []byte) error {
	return a.s.PutState(registrationsKey(service), json.RawMessage(raw))
}

func (a stateStore) Deployment(service, id string) (deploy.Deployment, bool, error) {
	raw, found, err := a.s.Deployment(service, id)
	if err != nil || !found {
		return deploy.Deployment{}, found, err
	}
	var dep deploy.Deployment
	if err := json.Unmarshal(raw, &dep); err != nil {
		return deploy.Deployment{}, false, fmt.Errorf("deployment %s of %s: %w", id, service, err)
	}
	return dep, true, nil
}
