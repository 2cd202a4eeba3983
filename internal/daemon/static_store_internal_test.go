package daemon

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/cutover/cutover/internal/store"
)

// The static runtime's registrations are kept byte for byte under the key
// earlier daemons used, so a store they wrote keeps working and one written
// now can be read by them.
func TestRegistrationStoreKeepsKeyAndBytes(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "cutover.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	a := registrationStore{st}
	if _, found, err := a.LoadRegistrations("web"); err != nil || found {
		t.Fatalf("load from an empty store: found %v, %v", found, err)
	}
	const want = `{"schema":2,"added":{"v1":["10.0.0.3:80"]},"healthy":{"v1":["10.0.0.3:80"]}}`
	if err := a.SaveRegistrations("web", []byte(want)); err != nil {
		t.Fatal(err)
	}
	var raw json.RawMessage
	if found, err := st.GetState("web/static-addresses", &raw); err != nil || !found || string(raw) != want {
		t.Errorf("state web/static-addresses = %s (found %v, %v), want %s", raw, found, err, want)
	}
	got, found, err := a.LoadRegistrations("web")
	if err != nil || !found || string(got) != want {
		t.Errorf("LoadRegistrations = %s (found %v, %v), want %s", got, found, err, want)
	}
}
