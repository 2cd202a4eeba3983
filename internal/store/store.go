// Package store persists cutover's controller state and deployment history
// in one bbolt file under the state directory.
//
// Every write is one bbolt Update transaction, fsynced before the method
// returns: what a Put acknowledged survives a crash (kill -9) of the daemon.
// The file carries a schema version; a file this build cannot read (corrupt,
// not a cutover store, or written by a newer cutover) is a loud error naming
// the file, never an empty start. One daemon holds the file at a time: Open
// fails fast while another process has it open.
//
// The store is generic: values are JSON-encoded from and decoded into
// whatever the caller passes, so it does not depend on the controller's
// types. A *Store is safe for concurrent use by multiple goroutines.
package store

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// SchemaVersion is the layout this build writes and the newest it reads.
//
// Layout (schema 1):
//
//	meta                      "schema" -> decimal SchemaVersion
//	state                     <service> -> JSON of the controller's state
//	deployments/<service>/    (nested buckets)
//	    records               8-byte big-endian sequence -> JSON record
//	    ids                   <deployment id> -> its 8-byte sequence
const SchemaVersion = 1

// lockTimeout is how long Open waits for another process to let go of the
// file before giving up.
const lockTimeout = time.Second

// Bucket and key names; strings so that no package-level value can be
// mutated.
const (
	bucketMeta        = "meta"
	bucketState       = "state"
	bucketDeployments = "deployments"
	bucketRecords     = "records"
	bucketIDs         = "ids"
	keySchema         = "schema"
)

// ErrInUse is returned (wrapped) by Open when another process holds the file.
var ErrInUse = errors.New("state store is in use by another cutover daemon")

// ErrUnreadable is returned (wrapped) by Open for a file that is corrupt,
// not a cutover store, or written by a newer cutover.
var ErrUnreadable = errors.New("state store cannot be read")

// ErrEmpty is returned (wrapped) by Open for a file that exists but is
// empty: a store that was lost (truncated, a failed copy, a full disk), not
// a new one. Starting over it would forget the live pool and the history,
// and the next deployment would skip its canary as a "first" one.
var ErrEmpty = errors.New("state store is empty")

// Options tune Open. The zero value is what the daemon uses.
type Options struct {
	// AcceptEmpty lets Open lay out a new store over a file that exists
	// but is empty, instead of failing with ErrEmpty (`cutover serve
	// --accept-empty-store`).
	AcceptEmpty bool
}

// Store is an open state file. The zero value is not usable; call Open.
type Store struct {
	db      *bolt.DB
	path    string
	pidFile string
	created bool // init laid out a new store
}

// Open opens the store at path, creating it (and its parent directories,
// mode 0700) when it does not exist. It fails within about a second with an
// error wrapping ErrInUse, naming the holder's pid when known, if another
// process has the file open; with an error wrapping ErrUnreadable when the
// file cannot be used as it is; and with one wrapping ErrEmpty when the
// file exists but is empty, unless opts.AcceptEmpty.
func Open(path string, opts Options) (*Store, error) {
	return open(path, opts, lockTimeout)
}

func open(path string, opts Options, timeout time.Duration) (*Store, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	if fi, err := os.Stat(path); err == nil && fi.Size() == 0 && !opts.AcceptEmpty {
		return nil, fmt.Errorf("open state store %s: %w (0 bytes): it existed but holds nothing, so the live pool "+
			"and the history it recorded are gone; cutover will not start from an empty state over it: restore a backup, "+
			"or start once with `cutover serve --accept-empty-store` to begin again from an empty store", path, ErrEmpty)
	}
	pidFile := path + ".pid"
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: timeout})
	switch {
	case errors.Is(err, bolterrors.ErrTimeout):
		return nil, fmt.Errorf("open state store %s: %w (%s); stop it or choose another state_dir",
			path, ErrInUse, holder(pidFile))
	case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrVersionMismatch),
		errors.Is(err, bolterrors.ErrChecksum), errors.Is(err, bolterrors.ErrInvalidMapping):
		return nil, unreadable(path, err)
	case err != nil:
		return nil, fmt.Errorf("open state store %s: %w", path, err)
	}
	s := &Store{db: db, path: path, pidFile: pidFile}
	if err := s.init(); err != nil {
		db.Close()
		return nil, err
	}
	// The pid file only improves the "in use" message; failing to write it
	// must not stop the daemon, but it is not silently ignored either.
	if err := writePID(pidFile); err != nil {
		db.Close()
		return nil, fmt.Errorf("open state store %s: write pid file: %w", path, err)
	}
	return s, nil
}

func unreadable(path string, cause error) error {
	return fmt.Errorf("open state store %s: %w: %w; cutover will not start from an empty state over it: "+
		"restore a backup, or move the file aside to start afresh", path, ErrUnreadable, cause)
}

// holder describes the process holding the store, from its pid file.
func holder(pidFile string) string {
	b, err := os.ReadFile(pidFile)
	if err != nil {
		return "pid unknown"
	}
	if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil {
		return fmt.Sprintf("pid %d", pid)
	}
	return "pid unknown"
}

func writePID(pidFile string) error {
	tmp := pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, pidFile)
}

// init checks the schema version of an existing file, or lays out a new one.
func (s *Store) init() error {
	// A panic here means bbolt met pages it cannot make sense of: report
	// the file as unreadable rather than crash the daemon.
	var err error
	func() {
		defer func() {
			if r := recover(); r != nil {
				err = unreadable(s.path, fmt.Errorf("corrupt pages: %v", r))
			}
		}()
		err = s.db.Update(s.layout)
	}()
	return err
}

func (s *Store) layout(tx *bolt.Tx) error {
	meta := tx.Bucket([]byte(bucketMeta))
	if meta == nil {
		if err := tx.ForEach(func(name []byte, _ *bolt.Bucket) error {
			return fmt.Errorf("holds bucket %q but no schema version", name)
		}); err != nil {
			return unreadable(s.path, fmt.Errorf("not a cutover store: %w", err))
		}
		s.created = true
		meta, err := tx.CreateBucket([]byte(bucketMeta))
		if err != nil {
			return fmt.Errorf("create state store %s: %w", s.path, err)
		}
		if err := meta.Put([]byte(keySchema), []byte(strconv.Itoa(SchemaVersion))); err != nil {
			return fmt.Errorf("create state store %s: %w", s.path, err)
		}
	} else {
		raw := meta.Get([]byte(keySchema))
		v, err := strconv.Atoi(string(raw))
		switch {
		case err != nil:
			return unreadable(s.path, fmt.Errorf("schema version %q is not a number", raw))
		case v > SchemaVersion:
			return unreadable(s.path, fmt.Errorf("written by a newer cutover (schema %d; this build reads up to %d)", v, SchemaVersion))
		case v < 1:
			return unreadable(s.path, fmt.Errorf("schema version %d is not valid", v))
		}
	}
	for _, b := range []string{bucketState, bucketDeployments} {
		if _, err := tx.CreateBucketIfNotExists([]byte(b)); err != nil {
			return fmt.Errorf("create state store %s: bucket %s: %w", s.path, b, err)
		}
	}
	return nil
}

// Created reports whether Open laid out a new store (the file did not
// exist, or was empty and accepted) rather than opening one with content.
func (s *Store) Created() bool { return s.created }

// Path returns the file the store lives in.
func (s *Store) Path() string { return s.path }

// Close releases the file so another process may open it. Pending writes
// have already been made durable by the calls that wrote them.
func (s *Store) Close() error {
	// Remove the pid file first, while we still hold the lock, so it never
	// names a process that has let go.
	if err := os.Remove(s.pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.db.Close()
		return fmt.Errorf("close state store %s: %w", s.path, err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close state store %s: %w", s.path, err)
	}
	return nil
}

// PutState stores v, JSON-encoded, as the state of service, replacing the
// previous one. It returns once the write is durable.
func (s *Store) PutState(service string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save state of %s: %w", service, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketState)).Put([]byte(service), raw)
	})
	if err != nil {
		return fmt.Errorf("save state of %s in %s: %w", service, s.path, err)
	}
	return nil
}

// GetState decodes the state of service into v (a pointer). It reports
// found=false, leaving v alone, for a service never saved, and an error for
// a state that cannot be decoded: that is never treated as "not found".
func (s *Store) GetState(service string, v any) (found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket([]byte(bucketState)).Get([]byte(service))
		if raw == nil {
			return nil
		}
		found = true
		return json.Unmarshal(raw, v)
	})
	if err != nil {
		return found, fmt.Errorf("read state of %s from %s: %w", service, s.path, err)
	}
	return found, nil
}

// States calls each with every stored service name and its raw JSON state,
// in name order. raw is only valid during the call. An error from each
// stops the walk and is returned as it is.
func (s *Store) States(each func(service string, raw []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket([]byte(bucketState)).ForEach(func(k, v []byte) error { return each(string(k), v) })
	})
}

// PutDeployment stores v, JSON-encoded, as the deployment record id of
// service. Saving an id again replaces the record in place, keeping its
// position; a new id goes after every earlier one. Order is the order ids
// were first saved, so ids need not sort by time. It returns once the write
// is durable.
func (s *Store) PutDeployment(service, id string, v any) error {
	if id == "" {
		return fmt.Errorf("save deployment of %s: empty id", service)
	}
	raw, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("save deployment %s of %s: %w", id, service, err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		svc, err := tx.Bucket([]byte(bucketDeployments)).CreateBucketIfNotExists([]byte(service))
		if err != nil {
			return err
		}
		records, err := svc.CreateBucketIfNotExists([]byte(bucketRecords))
		if err != nil {
			return err
		}
		ids, err := svc.CreateBucketIfNotExists([]byte(bucketIDs))
		if err != nil {
			return err
		}
		seq := ids.Get([]byte(id))
		if seq == nil {
			n, err := records.NextSequence()
			if err != nil {
				return err
			}
			seq = binary.BigEndian.AppendUint64(nil, n)
			if err := ids.Put([]byte(id), seq); err != nil {
				return err
			}
		}
		return records.Put(seq, raw)
	})
	if err != nil {
		return fmt.Errorf("save deployment %s of %s in %s: %w", id, service, s.path, err)
	}
	return nil
}

// Deployment returns the raw JSON of one deployment record of service,
// found by its id through the index, without reading the others; found is
// false when there is no such record.
func (s *Store) Deployment(service, id string) (raw []byte, found bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		svc := tx.Bucket([]byte(bucketDeployments)).Bucket([]byte(service))
		if svc == nil {
			return nil
		}
		ids, records := svc.Bucket([]byte(bucketIDs)), svc.Bucket([]byte(bucketRecords))
		if ids == nil || records == nil {
			return nil
		}
		seq := ids.Get([]byte(id))
		if seq == nil {
			return nil
		}
		if v := records.Get(seq); v != nil {
			raw, found = bytes.Clone(v), true
		}
		return nil
	})
	if err != nil {
		return nil, false, fmt.Errorf("read deployment %s of %s in %s: %w", id, service, s.path, err)
	}
	return raw, found, nil
}

// Deployments calls each with the raw JSON of the service's deployment
// records, newest first, at most limit of them (all when limit <= 0). raw
// is only valid during the call: decode or copy it. An error from each
// stops the walk and is returned as it is.
func (s *Store) Deployments(service string, limit int, each func(raw []byte) error) error {
	return s.db.View(func(tx *bolt.Tx) error {
		svc := tx.Bucket([]byte(bucketDeployments)).Bucket([]byte(service))
		if svc == nil {
			return nil
		}
		records := svc.Bucket([]byte(bucketRecords))
		if records == nil {
			return nil
		}
		c := records.Cursor()
		n := 0
		for k, v := c.Last(); k != nil && (limit <= 0 || n < limit); k, v = c.Prev() {
			if err := each(v); err != nil {
				return err
			}
			n++
		}
		return nil
	})
}
